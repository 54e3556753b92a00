"""The chat side: the platform-free core, storage, ratings, battles, front-ends and the CLI.

Nothing in this package imports torch at module level: the front-ends talk to the model only
through `model.types.Generator`.
"""
