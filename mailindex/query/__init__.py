"""Context.IO list parameters -> validated filters -> Tantivy queries."""
