"""Pool building: catalogue -> scores -> provider health -> selection -> the Pool, and the refresh that runs it."""
