"""Fan-out to the registries: deadlines, merge, fallback, source reports."""
