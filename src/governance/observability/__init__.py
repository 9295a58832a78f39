"""What operators watch: the request id every log line carries, the access log, `/metrics`
and (optionally) OpenTelemetry traces."""
