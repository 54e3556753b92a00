"""Joke battles: a group game (Quiplash-style) where people and the bot answer one setup and the
chat votes. `service.BattleService` runs it; `telegram_ui` and `discord_ui` plug it into the
front-ends; `export` turns finished rounds into training rows."""
