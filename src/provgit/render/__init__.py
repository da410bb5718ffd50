"""Renderers: values (diagnostics, plans, reports) -> text, JSON, markdown, HTML."""
