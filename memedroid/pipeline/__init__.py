"""The media pipeline's processes: workers, the finalizer, the janitor, and the processing
they run. They use services, repositories and the shared ground; never the HTTP layer."""
