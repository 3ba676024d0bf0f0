"""MemeDroid: the backend of a media social network."""
