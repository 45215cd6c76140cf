/**
 * Configuration files for the proxies under test, all pointing at the same
 * upstream on loopback: HAProxy and nginx as tuned single hops (one thread /
 * one worker, keep-alive to the upstream), and the Service documents our
 * proxy reads with --config.
 */

export interface HopPorts {
  /** Where the load generator connects. */
  listenPort: number;
  upstreamPort: number;
}

/**
 * HAProxy 2.6, single-threaded, HTTP mode, keep-alive on both sides and
 * server-side connections shared between clients (`http-reuse always`), no
 * logging. Run in the foreground with `haproxy -db -f FILE`.
 */
export function haproxyConfig(ports: HopPorts): string {
  return `# Written by bench/proxy/run.ts for one benchmark run.
global
    nbthread 1
    maxconn 4000
    tune.bufsize 16384

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend bench
    bind 127.0.0.1:${ports.listenPort}
    default_backend upstream

backend upstream
    server app 127.0.0.1:${ports.upstreamPort} maxconn 1000
`;
}

/**
 * nginx, one worker, upstream keep-alive (HTTP/1.1 with the Connection header
 * cleared, as nginx's documentation prescribes), no access log, temp paths
 * and pid inside `dir` so it runs unprivileged of the system's nginx. Run
 * with `nginx -p DIR -c FILE -e DIR/error.log`.
 */
export function nginxConfig(ports: HopPorts, dir: string): string {
  return `# Written by bench/proxy/run.ts for one benchmark run.
worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 60s;

    upstream app {
        server 127.0.0.1:${ports.upstreamPort};
        keepalive 64;
        keepalive_requests 10000000;
    }

    server {
        listen 127.0.0.1:${ports.listenPort} backlog=1024;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`;
}

/** The service the load targets and the client sidecar routes to (port 8080, like an app's). */
export const SERVER_SERVICE = 'bench-server';
export const CLIENT_SERVICE = 'bench-client';
export const SERVICE_PORT = 8080;
/** The Host header of the two-proxy path: the outbound listener routes origin-form requests by it. */
export const SERVER_HOST_HEADER = `${SERVER_SERVICE}:${SERVICE_PORT}`;

/**
 * Static `--config` for our proxies (DESIGN.md, "Configuration model"):
 * bench-server, whose one endpoint is the server sidecar's inbound listener,
 * and bench-client, the calling side's own service (no endpoints).
 */
export function meshConfig(serverInboundPort: number): string {
  return `# Written by bench/proxy/run.ts for one benchmark run.
apiVersion: tracemesh.dev/v1
kind: Service
metadata: { name: ${SERVER_SERVICE}, namespace: default }
spec:
  ports: [{ name: http, port: ${SERVICE_PORT}, protocol: http }]
  endpoints:
    - { address: 127.0.0.1, port: ${serverInboundPort}, labels: { version: v1 } }
---
apiVersion: tracemesh.dev/v1
kind: Service
metadata: { name: ${CLIENT_SERVICE}, namespace: default }
spec:
  ports: [{ name: http, port: ${SERVICE_PORT}, protocol: http }]
`;
}
