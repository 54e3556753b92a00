"""Joke battles: a group game (Quiplash-style) where people and the bot answer one setup and the
chat votes. Platform-free: no chat library is imported here.

`service.BattleService` is the way in (the commands front-ends call); `rounds` changes phases,
`timers` decides when; `state` and `scoring` are the rules as pure functions; `views` the
messages; `player` the bot as a contestant; `pool` the setups; `elo` the version ratings;
`export` the training rows. Each front-end's battle UI lives with that front-end.
"""
