"""`punchline chat`: the bot in a terminal, on the same core, storage and model."""
