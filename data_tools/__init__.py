"""PairUG builder (PairUni §1): features, K-means medoids, LLM completion, retrieval, assembly, validation.

Entry points: `python data_tools/build_pairs.py`, `python data_tools/make_demo_data.py`,
`python -m data_tools.validate`, `python -m data_tools.sources`. The pair schema is `data_tools.schema`.
"""
