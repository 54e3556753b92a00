"""The model side: prompt, adapter metadata, backends and the inference worker.

Importing this package is cheap (no torch); backends import torch when they are built.
"""
