"""One router per resource; each route parses, calls server.crud, and shapes the reply."""
