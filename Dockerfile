FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /quorumkv ./cmd/quorumkv

FROM gcr.io/distroless/static-debian12
COPY --from=build /quorumkv /quorumkv
ENTRYPOINT ["/quorumkv"]
