"""Cloud reasoning: edge evidence -> prompt -> small LLM -> validated, structured explanation.

The LLM writes only a title and a summary; anomaly flag, category, threat level and confidence are
set by deterministic rules from the edge's evidence and the configuration (see `evidence.py`).
"""
