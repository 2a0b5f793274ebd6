# One image for every component and the operator; the command picks the service
# (python -m celeris marketdata run | celeris execution run | ... ; python -m celeris_operator).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM node:20-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./
RUN npm run build

FROM python:3.11-slim
RUN useradd --uid 1000 --create-home celeris
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY --from=web /web/dist /app/web/dist
USER 1000
ENV PYTHONUNBUFFERED=1
EXPOSE 50051 9090 8080
CMD ["celeris", "--help"]
