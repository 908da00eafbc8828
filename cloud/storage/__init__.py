"""Storage behind interfaces: the ingest log (`ingest_log.IngestLog`), the event repository
(`event_repository.EventRepository`), their SQLite implementations, and `factory.open_storage`,
which builds the one `Storage` a process injects into its parts from the `store.url` setting."""
