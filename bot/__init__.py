"""carebot: answers a brand's social media mentions like a good support lead."""

__version__ = "0.1.0"
