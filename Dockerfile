# One image for the web process and the Celery GPU worker.
# torch from PyPI is the CUDA build on Linux x86_64 (what the GPU worker needs); to build a
# lighter CPU-only image pass --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX_URL=""
RUN pip install "${TORCH_SPEC}" ${TORCH_INDEX_URL:+--index-url "${TORCH_INDEX_URL}"}

# Dependencies first (cached while only the source changes), at the versions the tests
# ran with (requirements.lock, `make lock`); the project ships no package.
COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock && pip check

COPY . .

# Static files are collected into the image and served by whitenoise under hashed names
# (far-future caching), from the manifest that collectstatic writes.
ENV STATIC_ROOT=/app/staticfiles LORAHUB_VAR_DIR=/data DEBUG=0 LORAHUB_STATIC_MANIFEST=1
RUN SECRET_KEY=collectstatic-only LORAHUB_VAR_DIR=/tmp/build python manage.py collectstatic --noinput \
    && useradd --create-home --uid 1000 lorahub \
    && mkdir -p /data /work \
    && chown lorahub /data /work
USER lorahub

EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]
