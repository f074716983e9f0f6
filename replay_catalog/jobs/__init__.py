"""Background jobs of the web edge: ending silent live rooms, reconciling, reprocessing."""
