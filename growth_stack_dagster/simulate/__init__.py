"""The example company generator (`growth-stack simulate`): never imported by pipeline code."""
