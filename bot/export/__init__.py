"""`punchline ratings export`: the collected ratings as training data.

`rows` defines a row and writes them; `replies` and `bot.battles.export` make them;
`collect` gathers every kind.
"""
