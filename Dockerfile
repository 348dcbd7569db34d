# Image for docker-compose.yml: the web server, the Celery worker and beat share it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1
WORKDIR /app

# CPU-only torch first, so sentence-transformers never pulls CUDA wheels.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml requirements.lock README.md ./
COPY config ./config
COPY core ./core
COPY support ./support
COPY knowledge ./knowledge
COPY feedback ./feedback
COPY analytics ./analytics
COPY bugfix ./bugfix
COPY automation ./automation
COPY integrations ./integrations
RUN pip install -c requirements.lock .
COPY . .
RUN DEBUG=false SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost \
    DATABASE_URL=postgres://unused@localhost/unused REDIS_URL=redis://localhost:6379 \
    python manage.py collectstatic --noinput

RUN useradd --create-home helpdesk && mkdir -p /app/.data/media && chown -R helpdesk /app/.data
USER helpdesk
EXPOSE 8000
# docker-compose.yml migrates first and names each service's command; this is the web one.
CMD ["python", "-m", "uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--ws", "websockets", "--ws-max-size", "1048576", "--no-access-log"]
