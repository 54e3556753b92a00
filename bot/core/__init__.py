"""The platform-free core: what a setup, a reaction, a rating button or /stats do.

`service.BotCore` is the way in; `access` (allow-lists, admins), `rating_desk` (ratings coming
in), `ratings` (what they mean and add up to), `limits`, `stats`, `admin` (/reload), `language`
(is a setup in a language it answers?) and `texts` (every fixed line) are its parts.
"""
