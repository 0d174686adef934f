"""`python -m model_service`: serve the API with Uvicorn."""

from __future__ import annotations

import logging
import sys


def main() -> int:
    import uvicorn

    from .config import get_settings
    from .main import create_app

    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level,
                timeout_graceful_shutdown=5, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
