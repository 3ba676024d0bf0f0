# The MemeDroid app image: Python slim + FFmpeg + ImageMagick's MagickWand library.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg imagemagick libmagickwand-6.q16-6 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY memedroid ./memedroid
RUN pip install -e .
COPY . .

RUN useradd --system --home /app memedroid && mkdir -p /app/storage /app/var \
    && chown -R memedroid /app/storage /app/var
USER memedroid

EXPOSE 8000
ENV HTTP_BIND=0.0.0.0:8000
CMD ["python", "bin/memedroid-supervisor"]
