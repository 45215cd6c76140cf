// The capture addon: the socket options transparent capture needs and Node does not expose.
//   originalDst(fd)      -> { address, port, family } from SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST
//   setTransparent(fd)   -> IP_TRANSPARENT (IPv4) or IPV6_TRANSPARENT (IPv6) on a socket
//   isTransparent(fd)    -> whether that option is set
//   transparentSocket(family, address, mark)
//                        -> the fd of a new non-blocking TCP socket with IP_TRANSPARENT (IPV6_TRANSPARENT),
//                           SO_MARK `mark` (unless 0), bound to (address, port 0): ready for connect()
// Failures throw an Error whose `code` is the errno name (ENOENT, EBADF, ...) and `syscall` the call.
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>, whose kernel headers
// clash with glibc's <netinet/in.h>; the values are kernel ABI and never change.
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif
#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif

static const char *errno_name(int err) {
  switch (err) {
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case ENOTCONN: return "ENOTCONN";
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EADDRINUSE: return "EADDRINUSE";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    default: return "EUNKNOWN";
  }
}

// `call` is what failed as a reader should see it, e.g. "getsockopt(SO_ORIGINAL_DST)"; fd < 0: no socket to name.
static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *call, int fd) {
  char text[256];
  if (fd >= 0) snprintf(text, sizeof text, "%s on fd %d: %s (%s)", call, fd, strerror(err), errno_name(err));
  else snprintf(text, sizeof text, "%s: %s (%s)", call, strerror(err), errno_name(err));
  napi_value code, message, error, syscall_value;
  napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_create_error(env, code, message, &error);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_throw(env, error);
  return NULL;
}

// Reads the one argument, a file descriptor; false (with a TypeError thrown) when it is not one.
static int read_fd(napi_env env, napi_callback_info info, int *fd) {
  size_t argc = 1;
  napi_value arg;
  napi_valuetype type;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc < 1 || napi_typeof(env, arg, &type) != napi_ok || type != napi_number ||
      napi_get_value_int32(env, arg, fd) != napi_ok || *fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the argument must be a file descriptor (an integer >= 0)");
    return 0;
  }
  return 1;
}

// The socket's own family; a dual-stack IPv6 socket carrying IPv4 reports AF_INET (IPv4-mapped
// local address), because its conntrack entry is an IPv4 one.
static int socket_family(int fd, int *family) {
  struct sockaddr_in6 local;
  socklen_t len = sizeof local;
  memset(&local, 0, sizeof local);
  if (getsockname(fd, (struct sockaddr *)&local, &len) != 0) return errno;
  *family = local.sin6_family;
  if (*family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&local.sin6_addr)) *family = AF_INET;
  if (*family != AF_INET && *family != AF_INET6) return EAFNOSUPPORT;
  return 0;
}

static napi_value original_dst(napi_env env, napi_callback_info info) {
  int fd, family, err;
  if (!read_fd(env, info, &fd)) return NULL;
  if ((err = socket_family(fd, &family)) != 0) return throw_errno(env, err, "getsockname", "getsockname (before SO_ORIGINAL_DST)", fd);
  char text[INET6_ADDRSTRLEN];
  int port;
  if (family == AF_INET) {
    struct sockaddr_in dst;
    socklen_t len = sizeof dst;
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0) return throw_errno(env, errno, "getsockopt", "getsockopt(SO_ORIGINAL_DST)", fd);
    inet_ntop(AF_INET, &dst.sin_addr, text, sizeof text);
    port = ntohs(dst.sin_port);
  } else {
    struct sockaddr_in6 dst;
    socklen_t len = sizeof dst;
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) != 0) return throw_errno(env, errno, "getsockopt", "getsockopt(IP6T_SO_ORIGINAL_DST)", fd);
    inet_ntop(AF_INET6, &dst.sin6_addr, text, sizeof text);
    port = ntohs(dst.sin6_port);
  }
  napi_value result, address, port_value, family_value;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &address);
  napi_create_int32(env, port, &port_value);
  napi_create_int32(env, family == AF_INET ? 4 : 6, &family_value);
  napi_set_named_property(env, result, "address", address);
  napi_set_named_property(env, result, "port", port_value);
  napi_set_named_property(env, result, "family", family_value);
  return result;
}

// The option that matches the socket's own domain (not the IPv4-mapped view): IPV6_TRANSPARENT on an
// IPv6 socket covers its IPv4-mapped traffic too, since both set the same flag on the socket.
static int transparent_option(int fd, int *level, int *name) {
  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &len) != 0) return errno;
  if (local.ss_family == AF_INET) { *level = SOL_IP; *name = IP_TRANSPARENT; return 0; }
  if (local.ss_family == AF_INET6) { *level = SOL_IPV6; *name = IPV6_TRANSPARENT; return 0; }
  return EAFNOSUPPORT;
}

static napi_value set_transparent(napi_env env, napi_callback_info info) {
  int fd, level = 0, name = 0, err, on = 1;
  if (!read_fd(env, info, &fd)) return NULL;
  if ((err = transparent_option(fd, &level, &name)) != 0) return throw_errno(env, err, "getsockname", "getsockname (before IP_TRANSPARENT)", fd);
  if (setsockopt(fd, level, name, &on, sizeof on) != 0)
    return throw_errno(env, errno, "setsockopt", level == SOL_IP ? "setsockopt(IP_TRANSPARENT)" : "setsockopt(IPV6_TRANSPARENT)", fd);
  return NULL;
}

static napi_value is_transparent(napi_env env, napi_callback_info info) {
  int fd, level = 0, name = 0, err, on = 0;
  socklen_t len = sizeof on;
  if (!read_fd(env, info, &fd)) return NULL;
  if ((err = transparent_option(fd, &level, &name)) != 0) return throw_errno(env, err, "getsockname", "getsockname (before IP_TRANSPARENT)", fd);
  if (getsockopt(fd, level, name, &on, &len) != 0)
    return throw_errno(env, errno, "getsockopt", level == SOL_IP ? "getsockopt(IP_TRANSPARENT)" : "getsockopt(IPV6_TRANSPARENT)", fd);
  napi_value result;
  napi_get_boolean(env, on != 0, &result);
  return result;
}

// Reads (family, address, mark): family 4 or 6, an address of that family, a mark in [0, 2^32).
static int read_socket_args(napi_env env, napi_callback_info info, int *family, char *address, size_t size, uint32_t *mark) {
  size_t argc = 3, length = 0;
  napi_value args[3];
  napi_valuetype types[3];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  for (size_t i = 0; i < 3; i++) {
    if (i >= argc || napi_typeof(env, args[i], &types[i]) != napi_ok) types[i] = napi_undefined;
  }
  if (types[0] != napi_number || napi_get_value_int32(env, args[0], family) != napi_ok || (*family != 4 && *family != 6)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the first argument must be the address family, 4 or 6");
    return 0;
  }
  if (types[1] != napi_string || napi_get_value_string_utf8(env, args[1], address, size, &length) != napi_ok || length == 0 || length >= size - 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the second argument must be an IP address (text)");
    return 0;
  }
  if (types[2] != napi_number || napi_get_value_uint32(env, args[2], mark) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the third argument must be a socket mark (an integer >= 0, 0 for none)");
    return 0;
  }
  return 1;
}

// A socket that may use a local address this host does not own (a TPROXY client's), for a proxy
// that wants its upstream connection to come from the downstream client. IP_TRANSPARENT must be
// set before bind, or bind refuses the foreign address (EADDRNOTAVAIL); SO_MARK is what the
// capture rules key the connection on (not captured again, replies routed back to this socket).
// Binding to port 0 takes an ephemeral port on that address now; connect() is left to the caller
// (libuv's uv_tcp_open + uv_tcp_connect keep an already bound fd). Needs CAP_NET_ADMIN.
static napi_value transparent_socket(napi_env env, napi_callback_info info) {
  int family, fd, on = 1;
  uint32_t mark;
  char address[INET6_ADDRSTRLEN + 1];
  if (!read_socket_args(env, info, &family, address, sizeof address, &mark)) return NULL;
  struct sockaddr_storage local;
  socklen_t local_len;
  memset(&local, 0, sizeof local);
  if (family == 4) {
    struct sockaddr_in *in = (struct sockaddr_in *)&local;
    in->sin_family = AF_INET;
    local_len = sizeof *in;
    if (inet_pton(AF_INET, address, &in->sin_addr) != 1) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "the address is not an IPv4 address");
      return NULL;
    }
  } else {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&local;
    in6->sin6_family = AF_INET6;
    local_len = sizeof *in6;
    if (inet_pton(AF_INET6, address, &in6->sin6_addr) != 1) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "the address is not an IPv6 address");
      return NULL;
    }
  }
  fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return throw_errno(env, errno, "socket", "socket(SOCK_STREAM)", -1);
  const char *syscall = "setsockopt";
  char call[64 + INET6_ADDRSTRLEN];
  call[0] = '\0';
  if (family == 4 ? setsockopt(fd, SOL_IP, IP_TRANSPARENT, &on, sizeof on) != 0 : setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &on, sizeof on) != 0) {
    snprintf(call, sizeof call, "%s", family == 4 ? "setsockopt(IP_TRANSPARENT)" : "setsockopt(IPV6_TRANSPARENT)");
  } else if (mark != 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) {
    snprintf(call, sizeof call, "setsockopt(SO_MARK 0x%x)", mark);
  } else if (bind(fd, (struct sockaddr *)&local, local_len) != 0) {
    syscall = "bind";
    snprintf(call, sizeof call, family == 4 ? "bind to %s port 0" : "bind to [%s] port 0", address);
  }
  if (call[0] != '\0') {
    int err = errno;
    close(fd);
    return throw_errno(env, err, syscall, call, -1);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
    { "originalDst", NULL, original_dst, NULL, NULL, NULL, napi_enumerable, NULL },
    { "setTransparent", NULL, set_transparent, NULL, NULL, NULL, napi_enumerable, NULL },
    { "isTransparent", NULL, is_transparent, NULL, NULL, NULL, napi_enumerable, NULL },
    { "transparentSocket", NULL, transparent_socket, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof methods / sizeof methods[0], methods);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
