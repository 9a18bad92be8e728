"""The sleep-time consolidator: stores long contexts and, while pools are idle, compresses
and pre-thinks them so that later queries send far fewer tokens (Lin et al. 2025)."""
