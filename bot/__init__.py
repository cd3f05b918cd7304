"""aiinfra-digest: the application (settings, store, chat adapters, scheduler, CLI)."""
