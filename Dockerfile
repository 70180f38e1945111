# tuner: workers, migrations and the dashboard, from one image.
#   docker compose build         (see docker-compose.yml and README "docker-compose")
# The base image is pinned to the exact Python the tests run on, and every Python dependency to the exact
# version in constraints.txt (README "docker-compose" says how to refresh it).
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# What pip needs to build the package: metadata, the pins, the package, the migrations shipped inside it.
COPY pyproject.toml README.md constraints.txt ./
COPY tuner ./tuner
COPY alembic ./alembic
RUN pip install -c constraints.txt ".[postgres,fast]"

# The example specs, so `tuner study create studies/<spec>.toml` works in the container.
COPY studies ./studies

RUN useradd --create-home --uid 10001 --user-group tuner && chown -R tuner:tuner /app
USER tuner

EXPOSE 8080
CMD ["tuner", "--help"]
