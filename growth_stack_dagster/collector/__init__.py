"""The HTTP collector: Segment/RudderStack tracking API and signed webhooks into event files."""
