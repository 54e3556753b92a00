"""What several `punchline serve` processes share through the broker (Redis): one rate limit
per person (`limits`) and one Telegram poller (`lease`)."""
