"""Each tenant's client book: import, versions, models, filters and scores."""
