# Punchline in a container. CPU by default:
#   docker build -t punchline .
#   docker run --rm -e PUNCHLINE_TELEGRAM__TOKEN=... -v $PWD/adapters:/adapters \
#       -e PUNCHLINE_MODEL__ADAPTER=/adapters/v1 -v punchline-data:/data punchline serve
# CUDA: pick the PyTorch wheel index for your CUDA version, e.g.
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t punchline:cuda .
# and run with `--gpus all -e PUNCHLINE_MODEL__DEVICE=cuda`.
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PUNCHLINE_STORAGE__PATH=/data/punchline.db \
    PUNCHLINE_MODEL__CACHE_DIR=/data/cache \
    HF_HOME=/data/hf

WORKDIR /app
# torch first, from the chosen index, so the project's `torch>=` requirement is already met.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY model ./model
COPY training ./training
COPY config ./config
RUN pip install . && useradd --create-home punchline && mkdir -p /data && chown punchline /data

USER punchline
VOLUME ["/data"]
ENTRYPOINT ["punchline"]
CMD ["serve"]
