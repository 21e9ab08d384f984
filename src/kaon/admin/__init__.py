"""The admin REST API (`/api/v1`, Bearer admin token, OpenAPI at `/api/v1/openapi.json`)."""
