"""`python -m model_service`: serve the API with Uvicorn."""

from __future__ import annotations

import sys


def main() -> int:
    import uvicorn

    from .config import get_settings
    from .logs import configure_logging
    from .main import create_app

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    # JSON logs: uvicorn's own loggers go to the root handler too (log_config=None leaves them unconfigured)
    log_config = None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level,
                timeout_graceful_shutdown=5, access_log=False, log_config=log_config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
