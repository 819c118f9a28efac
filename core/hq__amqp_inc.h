/* hq__amqp_inc: the one place that knows where rabbitmq-c keeps its headers.
 *
 * rabbitmq-c 0.11 (Debian 12) installs <amqp.h>, <amqp_tcp_socket.h> and <amqp_ssl_socket.h>;
 * 0.12 and later moved them to <rabbitmq-c/amqp.h>, <rabbitmq-c/tcp_socket.h> and
 * <rabbitmq-c/ssl_socket.h> (the old names remain for a while with a deprecation warning).
 * Include this instead of any rabbitmq-c header. In the programs only core/amqp.c,
 * core/consume.c and core/archive_amqp.c do (through hq__amqp_private.h); besides them, the
 * benchmarks and the unit test of the header decoder. */
#ifndef HQ__AMQP_INC_H
#define HQ__AMQP_INC_H

#if defined(__has_include)
#if __has_include(<rabbitmq-c/amqp.h>)
#define HQ__RABBITMQ_C_NEW_LAYOUT 1
#endif
#endif

#ifdef HQ__RABBITMQ_C_NEW_LAYOUT
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/framing.h>
#include <rabbitmq-c/ssl_socket.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#endif

#endif
