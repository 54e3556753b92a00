"""The discord front-end: client set-up, handlers, conversion to the core's types, sending, buttons and the battle UI."""
