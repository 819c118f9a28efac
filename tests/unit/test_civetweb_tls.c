/* test_civetweb_tls: the CivetWeb hookmq is built with cannot serve TLS, which is why the config
 * refuses TLS listeners ("8443s"; docs/deploy.md, "TLS: terminate it in a reverse proxy").
 *
 * Debian's CivetWeb 1.15 (Debian 12) and 1.16 (Debian 13) load libssl.so at run time with the
 * OpenSSL 1.1 API and look up SSL_get_peer_certificate, which OpenSSL 3 no longer exports:
 * started as the gateway starts it (mg_init_library(0)), a TLS listener fails to start. This
 * test starts one with a valid certificate and expects exactly that. Should a CivetWeb come
 * that starts it, the test fails and says so: then check that it serves TLS, and let the gateway
 * accept TLS listeners when built with it (core/config.c, listen_error). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hq__civetweb.h"

/* A self-signed certificate and its key, in one PEM file as CivetWeb wants it. */
static void write_cert(const char *path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    FILE *f;

    assert_non_null(key);
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
    X509_free(x);
    EVP_PKEY_free(key);
}

static unsigned free_port(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_tls_listener_does_not_start(void **state)
{
    char dir[] = "/tmp/hq-test-cwtls-XXXXXX", pem[64], port[32], ebuf[256] = "";
    const char *opts[] = {"listening_ports", port, "ssl_certificate", pem, "num_threads", "1",
                          NULL};
    struct mg_callbacks cb;
    struct mg_init_data init;
    struct mg_error_data ed;
    struct mg_context *ctx;
    unsigned ecode;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(pem, sizeof(pem), "%s/server.pem", dir);
    write_cert(pem);
    snprintf(port, sizeof(port), "127.0.0.1:%us", free_port());

    mg_init_library(0);
    memset(&cb, 0, sizeof(cb));
    memset(&init, 0, sizeof(init));
    init.callbacks = &cb;
    init.configuration_options = opts;
    hq__mg_error_init(&ed, &ecode, ebuf, sizeof(ebuf));
    ctx = mg_start2(&init, &ed);
    if (ctx) {
        mg_stop(ctx);
        mg_exit_library();
        unlink(pem);
        rmdir(dir);
        fail_msg("CivetWeb %s started a TLS listener: check that it serves TLS with this "
                 "OpenSSL, then let the gateway accept TLS listeners when built with it "
                 "(docs/deploy.md)",
                 mg_version());
    }
    print_message("CivetWeb %s refuses the TLS listener: %s\n", mg_version(), ebuf);
    assert_true(ebuf[0] != '\0');
    mg_exit_library();
    unlink(pem);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_listener_does_not_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
