"""LangChain tools wrapping the ML models: typed arguments in, typed results out."""
