/* The corpus: every rule of include/spindle/http.h has a case here, valid
 * and invalid, with the rule that decides it. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define CORPUS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORPUS_ASAN 1
#endif
#endif
#ifdef CORPUS_ASAN
#include <sanitizer/asan_interface.h>
#endif

#include "http_corpus.h"

#define R(x) .raw = (x), .len = sizeof(x) - 1
#define HOST "Host: a\r\n"
#define GET_HEAD "GET / HTTP/1.1\r\n" HOST
#define CHUNKED_HEAD \
    "POST /cgi-bin/x HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"

static const sp_http_limits small_body = { 8192, 8192, 100, 8 };
static const sp_http_limits huge_body = { 8192, 8192, 100, UINT64_MAX };

struct corpus_case corpus[] = {
    /* ---- valid requests ---- */
    { .name = "get_minimal", R(GET_HEAD "\r\n"), .method = SP_HTTP_GET,
      .target = "/", .path = "/", .minor = 1, .keep_alive = true, .num_headers = 1,
      .rule = "RFC 9112 §3: request-line; §9.3: 1.1 persists by default" },
    { .name = "get_typical",
      R("GET /index.html HTTP/1.1\r\nHost: localhost:8080\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
        "Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\n"
        "Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n"),
      .method = SP_HTTP_GET, .target = "/index.html", .path = "/index.html", .minor = 1,
      .keep_alive = true, .num_headers = 6, .rule = "a browser's request" },
    { .name = "http10_close", R("GET / HTTP/1.0\r\n\r\n"), .method = SP_HTTP_GET,
      .target = "/", .path = "/", .minor = 0, .keep_alive = false, .num_headers = 0,
      .rule = "RFC 9112 §9.3: 1.0 closes unless keep-alive; Host optional in 1.0" },
    { .name = "http10_keepalive", R("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
      .method = SP_HTTP_GET, .target = "/", .path = "/", .minor = 0, .keep_alive = true,
      .num_headers = 1, .rule = "RFC 9112 §9.3 / RFC 2068 §19.7.1: 1.0 keep-alive" },
    { .name = "http10_keepalive_case", R("GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n"),
      .method = SP_HTTP_GET, .target = "/", .path = "/", .minor = 0, .keep_alive = true,
      .num_headers = 1, .rule = "RFC 9110 §5.1 names, §7.6.1 options: case-insensitive" },
    { .name = "http10_keepalive_and_close",
      R("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), .method = SP_HTTP_GET,
      .target = "/", .path = "/", .minor = 0, .keep_alive = false, .num_headers = 1,
      .rule = "RFC 9112 §9.6: close wins" },
    { .name = "http11_close", R(GET_HEAD "Connection: close\r\n\r\n"), .method = SP_HTTP_GET,
      .target = "/", .path = "/", .minor = 1, .keep_alive = false, .num_headers = 2,
      .rule = "RFC 9112 §9.6" },
    { .name = "http11_close_in_list", R(GET_HEAD "Connection: keep-alive, Close\r\n\r\n"),
      .method = SP_HTTP_GET, .target = "/", .path = "/", .minor = 1, .keep_alive = false,
      .num_headers = 2, .rule = "RFC 9110 §7.6.1: Connection is a list" },
    { .name = "http11_close_second_line",
      R(GET_HEAD "Connection: upgrade\r\nConnection: close\r\n\r\n"), .method = SP_HTTP_GET,
      .target = "/", .path = "/", .minor = 1, .keep_alive = false, .num_headers = 3,
      .rule = "RFC 9110 §5.3: lines of one name are one list" },
    { .name = "leading_empty_lines", R("\r\n\r\n" GET_HEAD "\r\n"), .method = SP_HTTP_GET,
      .target = "/", .path = "/", .minor = 1, .keep_alive = true, .num_headers = 1,
      .rule = "RFC 9112 §2.2: ignore empty lines before the request-line" },
    { .name = "query", R("GET /sleep?ms=10 HTTP/1.1\r\n" HOST "\r\n"), .method = SP_HTTP_GET,
      .target = "/sleep?ms=10", .path = "/sleep", .query = "ms=10", .minor = 1,
      .keep_alive = true, .num_headers = 1, .rule = "RFC 9112 §3.2.1 origin-form" },
    { .name = "empty_query", R("GET /? HTTP/1.1\r\n" HOST "\r\n"), .method = SP_HTTP_GET,
      .target = "/?", .path = "/", .query = "", .minor = 1, .keep_alive = true,
      .num_headers = 1, .rule = "RFC 3986 §3.4: an empty query is a query" },
    { .name = "absolute_form",
      R("GET http://example.com/x/y?z=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"),
      .method = SP_HTTP_GET, .target = "http://example.com/x/y?z=1", .path = "/x/y",
      .query = "z=1", .minor = 1, .keep_alive = true, .num_headers = 1,
      .rule = "RFC 9112 §3.2.2: a server MUST accept absolute-form" },
    { .name = "absolute_form_no_path",
      R("GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"),
      .method = SP_HTTP_GET, .target = "HTTPS://example.com", .path = "/", .minor = 1,
      .keep_alive = true, .num_headers = 1,
      .rule = "RFC 9112 §3.2.1: an empty path is \"/\"; schemes are case-insensitive" },
    { .name = "options_star", R("OPTIONS * HTTP/1.1\r\n" HOST "\r\n"),
      .method = SP_HTTP_OPTIONS, .target = "*", .path = "*", .minor = 1, .keep_alive = true,
      .num_headers = 1, .rule = "RFC 9112 §3.2.4 asterisk-form" },
    { .name = "method_head", R("HEAD / HTTP/1.1\r\n" HOST "\r\n"), .method = SP_HTTP_HEAD,
      .target = "/", .path = "/", .minor = 1, .keep_alive = true, .num_headers = 1,
      .rule = "RFC 9110 §9.3.2" },
    { .name = "method_put", R("PUT /x HTTP/1.1\r\n" HOST "Content-Length: 2\r\n\r\nhi"),
      .method = SP_HTTP_PUT, .target = "/x", .path = "/x", .minor = 1, .keep_alive = true,
      .num_headers = 2, .body_kind = SP_HTTP_BODY_LENGTH, .body = "hi",
      .rule = "RFC 9110 §9.3.4" },
    { .name = "method_delete", R("DELETE /x HTTP/1.1\r\n" HOST "\r\n"),
      .method = SP_HTTP_DELETE, .target = "/x", .path = "/x", .minor = 1,
      .keep_alive = true, .num_headers = 1, .rule = "RFC 9110 §9.3.5" },
    { .name = "method_trace", R("TRACE / HTTP/1.1\r\n" HOST "\r\n"), .method = SP_HTTP_TRACE,
      .target = "/", .path = "/", .minor = 1, .keep_alive = true, .num_headers = 1,
      .rule = "RFC 9110 §9.3.8" },
    { .name = "method_patch", R("PATCH /x HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n"),
      .method = SP_HTTP_PATCH, .target = "/x", .path = "/x", .minor = 1,
      .keep_alive = true, .num_headers = 2, .body_kind = SP_HTTP_BODY_LENGTH,
      .rule = "RFC 5789" },
    { .name = "method_options", R("OPTIONS /x HTTP/1.1\r\n" HOST "\r\n"),
      .method = SP_HTTP_OPTIONS, .target = "/x", .path = "/x", .minor = 1,
      .keep_alive = true, .num_headers = 1, .rule = "RFC 9110 §9.3.7" },
    { .name = "post_length",
      R("POST /cgi-bin/x HTTP/1.1\r\n" HOST "Content-Length: 5\r\n\r\nhello"),
      .method = SP_HTTP_POST, .target = "/cgi-bin/x", .path = "/cgi-bin/x", .minor = 1,
      .keep_alive = true, .num_headers = 2, .body_kind = SP_HTTP_BODY_LENGTH,
      .body = "hello", .rule = "RFC 9112 §6.3 rule 6" },
    { .name = "post_length_leading_zeros",
      R("POST / HTTP/1.1\r\n" HOST "Content-Length: 005\r\n\r\nhello"),
      .method = SP_HTTP_POST, .target = "/", .path = "/", .minor = 1, .keep_alive = true,
      .num_headers = 2, .body_kind = SP_HTTP_BODY_LENGTH, .body = "hello",
      .rule = "RFC 9110 §8.6: Content-Length = 1*DIGIT" },
    { .name = "post_chunked",
      R(CHUNKED_HEAD "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), .method = SP_HTTP_POST,
      .target = "/cgi-bin/x", .path = "/cgi-bin/x", .minor = 1, .keep_alive = true,
      .num_headers = 2, .body_kind = SP_HTTP_BODY_CHUNKED, .body = "hello world",
      .rule = "RFC 9112 §7.1" },
    { .name = "chunked_extensions",
      R(CHUNKED_HEAD "5;foo=bar\r\nhello\r\n1 ; a = \"b c\"\r\n!\r\n0;last\r\n\r\n"),
      .method = SP_HTTP_POST, .target = "/cgi-bin/x", .path = "/cgi-bin/x", .minor = 1,
      .keep_alive = true, .num_headers = 2, .body_kind = SP_HTTP_BODY_CHUNKED,
      .body = "hello!", .rule = "RFC 9112 §7.1.1: extensions are skipped" },
    { .name = "chunked_trailers",
      R(CHUNKED_HEAD "2\r\nab\r\n0\r\nX-Checksum: 1\r\nY:\r\n\r\n"), .method = SP_HTTP_POST,
      .target = "/cgi-bin/x", .path = "/cgi-bin/x", .minor = 1, .keep_alive = true,
      .num_headers = 2, .body_kind = SP_HTTP_BODY_CHUNKED, .body = "ab",
      .rule = "RFC 9112 §7.1.2: trailer section" },
    { .name = "chunked_hex_case_and_zeros",
      R(CHUNKED_HEAD "a\r\n0123456789\r\n000B\r\nabcdefghijk\r\n00\r\n\r\n"),
      .method = SP_HTTP_POST, .target = "/cgi-bin/x", .path = "/cgi-bin/x", .minor = 1,
      .keep_alive = true, .num_headers = 2, .body_kind = SP_HTTP_BODY_CHUNKED,
      .body = "0123456789abcdefghijk", .rule = "RFC 9112 §7.1: chunk-size = 1*HEXDIG" },
    { .name = "te_case_and_ows",
      R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding:\t CHUNKED \t\r\n\r\n0\r\n\r\n"),
      .method = SP_HTTP_POST, .target = "/", .path = "/", .minor = 1, .keep_alive = true,
      .num_headers = 2, .body_kind = SP_HTTP_BODY_CHUNKED,
      .rule = "RFC 9112 §7: coding names are case-insensitive; OWS trimmed" },
    { .name = "te_empty_elements",
      R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: , chunked,\r\n\r\n0\r\n\r\n"),
      .method = SP_HTTP_POST, .target = "/", .path = "/", .minor = 1, .keep_alive = true,
      .num_headers = 2, .body_kind = SP_HTTP_BODY_CHUNKED,
      .rule = "RFC 9110 §5.6.1: empty list elements are ignored" },
    { .name = "value_ows_trimmed", R(GET_HEAD "X:  \t v  w \t \r\n\r\n"),
      .method = SP_HTTP_GET, .target = "/", .path = "/", .minor = 1, .keep_alive = true,
      .num_headers = 2, .rule = "RFC 9112 §5: OWS around the value is not part of it" },
    { .name = "empty_value", R(GET_HEAD "X:\r\nY: \r\n\r\n"), .method = SP_HTTP_GET,
      .target = "/", .path = "/", .minor = 1, .keep_alive = true, .num_headers = 3,
      .rule = "RFC 9110 §5.5: field-value may be empty" },
    { .name = "obs_text_value", R(GET_HEAD "X: caf\xc3\xa9 \xff\r\n\r\n"),
      .method = SP_HTTP_GET, .target = "/", .path = "/", .minor = 1, .keep_alive = true,
      .num_headers = 2, .rule = "RFC 9110 §5.5: obs-text is opaque data" },
    { .name = "token_name_chars", R(GET_HEAD "X-!#$%&'*+-.^_`|~09aZ: v\r\n\r\n"),
      .method = SP_HTTP_GET, .target = "/", .path = "/", .minor = 1, .keep_alive = true,
      .num_headers = 2, .rule = "RFC 9110 §5.6.2: tchar" },
    { .name = "target_lenient_chars", R("GET /a\"<>\\^`{|}b HTTP/1.1\r\n" HOST "\r\n"),
      .method = SP_HTTP_GET, .target = "/a\"<>\\^`{|}b", .path = "/a\"<>\\^`{|}b",
      .minor = 1, .keep_alive = true, .num_headers = 1,
      .rule = "our choice (like nginx): any VCHAR but '#' in the target" },
    { .name = "content_length_zero", R("POST / HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n"),
      .method = SP_HTTP_POST, .target = "/", .path = "/", .minor = 1, .keep_alive = true,
      .num_headers = 2, .body_kind = SP_HTTP_BODY_LENGTH, .rule = "RFC 9110 §8.6" },
    { .name = "content_length_name_case",
      R("POST / HTTP/1.1\r\n" HOST "content-LENGTH: 3\r\n\r\nabc"), .method = SP_HTTP_POST,
      .target = "/", .path = "/", .minor = 1, .keep_alive = true, .num_headers = 2,
      .body_kind = SP_HTTP_BODY_LENGTH, .body = "abc", .rule = "RFC 9110 §5.1" },
    { .name = "version_1_9_as_1_1", R("GET / HTTP/1.9\r\n" HOST "\r\n"), .method = SP_HTTP_GET,
      .target = "/", .path = "/", .minor = 1, .keep_alive = true, .num_headers = 1,
      .rule = "RFC 9110 §2.5: a higher minor is processed as the highest we know" },
    { .name = "expect_continue",
      R("POST / HTTP/1.1\r\n" HOST "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\nx"),
      .method = SP_HTTP_POST, .target = "/", .path = "/", .minor = 1, .keep_alive = true,
      .expect_continue = true, .num_headers = 3, .body_kind = SP_HTTP_BODY_LENGTH,
      .body = "x", .rule = "RFC 9110 §10.1.1" },
    { .name = "expect_continue_http10",
      R("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"),
      .method = SP_HTTP_POST, .target = "/", .path = "/", .minor = 0, .keep_alive = false,
      .expect_continue = false, .num_headers = 2, .body_kind = SP_HTTP_BODY_LENGTH,
      .body = "x", .rule = "RFC 9110 §10.1.1: ignored in an HTTP/1.0 request" },
    { .name = "host_empty", R("GET / HTTP/1.1\r\nHost:\r\n\r\n"), .method = SP_HTTP_GET,
      .target = "/", .path = "/", .minor = 1, .keep_alive = true, .num_headers = 1,
      .rule = "RFC 9112 §3.2: an empty Host is valid" },
    { .name = "pipelined",
      R(GET_HEAD "\r\nGET /second HTTP/1.1\r\n" HOST "\r\n"), .method = SP_HTTP_GET,
      .target = "/", .path = "/", .minor = 1, .keep_alive = true, .num_headers = 1,
      .consumed = sizeof(GET_HEAD "\r\n") - 1,
      .rule = "RFC 9112 §9.3.2: the head ends where the next request starts" },
    { .name = "pipelined_after_body",
      R("POST / HTTP/1.1\r\n" HOST "Content-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n"),
      .method = SP_HTTP_POST, .target = "/", .path = "/", .minor = 1, .keep_alive = true,
      .num_headers = 2, .body_kind = SP_HTTP_BODY_LENGTH, .body = "abc",
      .consumed = sizeof("POST / HTTP/1.1\r\n" HOST "Content-Length: 3\r\n\r\nabc") - 1,
      .rule = "RFC 9112 §6.3 rule 6: the body is exactly Content-Length bytes" },
    { .name = "pipelined_after_chunked", R(CHUNKED_HEAD "1\r\nz\r\n0\r\n\r\nGET / HTTP/1.1"),
      .method = SP_HTTP_POST, .target = "/cgi-bin/x", .path = "/cgi-bin/x", .minor = 1,
      .keep_alive = true, .num_headers = 2, .body_kind = SP_HTTP_BODY_CHUNKED, .body = "z",
      .consumed = sizeof(CHUNKED_HEAD "1\r\nz\r\n0\r\n\r\n") - 1,
      .rule = "RFC 9112 §7.1: the body ends after the trailer section" },
    { .name = "small_body_at_limit",
      R("POST / HTTP/1.1\r\n" HOST "Content-Length: 8\r\n\r\n12345678"),
      .limits = &small_body, .method = SP_HTTP_POST, .target = "/", .path = "/",
      .minor = 1, .keep_alive = true, .num_headers = 2, .body_kind = SP_HTTP_BODY_LENGTH,
      .body = "12345678", .rule = "max_body is inclusive" },
    { .name = "chunked_at_limit", R(CHUNKED_HEAD "5\r\n12345\r\n3\r\n678\r\n0\r\n\r\n"),
      .limits = &small_body, .method = SP_HTTP_POST, .target = "/cgi-bin/x",
      .path = "/cgi-bin/x", .minor = 1, .keep_alive = true, .num_headers = 2,
      .body_kind = SP_HTTP_BODY_CHUNKED, .body = "12345678",
      .rule = "max_body counts decoded chunk data" },
    /* generated: see corpus_init() */
    { .name = "gen_line_8192", .method = SP_HTTP_GET, .minor = 1, .keep_alive = true,
      .num_headers = 1, .rule = "the request line limit (with CRLF) is inclusive" },
    { .name = "gen_headers_8192", .method = SP_HTTP_GET, .target = "/", .path = "/",
      .minor = 1, .keep_alive = true, .num_headers = 2,
      .rule = "the header section limit (with the final CRLF) is inclusive" },
    { .name = "gen_headers_100", .method = SP_HTTP_GET, .target = "/", .path = "/",
      .minor = 1, .keep_alive = true, .num_headers = 100,
      .rule = "max_headers is inclusive" },

    /* ---- incomplete ---- */
    { .name = "incomplete_head", R(GET_HEAD), .status = CORPUS_INCOMPLETE,
      .rule = "no final CRLF yet" },
    { .name = "incomplete_cr", R(GET_HEAD "\r"), .status = CORPUS_INCOMPLETE,
      .rule = "the final LF may still come" },
    { .name = "incomplete_body",
      R("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\n\r\nhel"),
      .status = CORPUS_INCOMPLETE, .rule = "two body bytes missing" },
    { .name = "incomplete_chunked", R(CHUNKED_HEAD "5\r\nhello\r\n0\r\n"),
      .status = CORPUS_INCOMPLETE, .rule = "the trailer section is not ended" },

    /* ---- line endings and bytes: 400 ---- */
    { .name = "bare_lf_request_line", R("GET / HTTP/1.1\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §2.2: we do not accept a bare LF as a line terminator" },
    { .name = "bare_lf_field", R(GET_HEAD "X: a\n\r\n"), .status = 400,
      .rule = "RFC 9112 §2.2" },
    { .name = "bare_lf_end", R(GET_HEAD "\n"), .status = 400, .rule = "RFC 9112 §2.2" },
    { .name = "bare_lf_leading", R("\n" GET_HEAD "\r\n"), .status = 400,
      .rule = "RFC 9112 §2.2: only CRLF empty lines are skipped" },
    { .name = "bare_cr_in_value", R(GET_HEAD "X: a\rb\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §2.2: a bare CR MUST be refused or replaced by SP" },
    { .name = "bare_cr_after_version", R("GET / HTTP/1.1\rX" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §2.2" },
    { .name = "cr_cr_lf", R("GET / HTTP/1.1\r\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §2.2" },
    { .name = "nul_in_value", R(GET_HEAD "X: a\0b\r\n\r\n"), .status = 400,
      .rule = "RFC 9110 §5.5: NUL MUST be refused or replaced" },
    { .name = "nul_in_name", R(GET_HEAD "X\0: a\r\n\r\n"), .status = 400,
      .rule = "RFC 9110 §5.6.2: names are tokens" },
    { .name = "nul_in_target", R("GET /\0 HTTP/1.1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §3.2" },
    { .name = "nul_in_method", R("G\0T / HTTP/1.1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9110 §9.1: method = token" },
    { .name = "ctl_in_value", R(GET_HEAD "X: a\x01z\r\n\r\n"), .status = 400,
      .rule = "RFC 9110 §5.5: field-vchar excludes CTLs" },
    { .name = "del_in_value", R(GET_HEAD "X: a\x7fz\r\n\r\n"), .status = 400,
      .rule = "RFC 9110 §5.5" },
    { .name = "vtab_in_te", R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: \x0b" "chunked\r\n\r\n"),
      .status = 400, .rule = "RFC 9110 §5.5: VT is not OWS (a smuggling trick)" },

    /* ---- field syntax: 400 ---- */
    { .name = "space_before_colon", R(GET_HEAD "X : a\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §5.1: MUST reject whitespace before the colon" },
    { .name = "tab_before_colon", R(GET_HEAD "X\t: a\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §5.1" },
    { .name = "space_before_colon_te",
      R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §5.1: the classic TE smuggling variant" },
    { .name = "obs_fold", R(GET_HEAD "X: a\r\n b\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §5.2: a server may refuse obs-fold with 400" },
    { .name = "obs_fold_tab", R(GET_HEAD "X: a\r\n\tb\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §5.2" },
    { .name = "space_before_first_field", R("GET / HTTP/1.1\r\n " HOST "\r\n"),
      .status = 400, .rule = "RFC 9112 §2.2: MUST reject or skip such a line" },
    { .name = "empty_name", R(GET_HEAD ": a\r\n\r\n"), .status = 400,
      .rule = "RFC 9110 §5.1: field-name = token (1*tchar)" },
    { .name = "name_not_token", R(GET_HEAD "X(y): a\r\n\r\n"), .status = 400,
      .rule = "RFC 9110 §5.6.2" },
    { .name = "no_colon", R(GET_HEAD "Xa\r\n\r\n"), .status = 400, .rule = "RFC 9112 §5" },

    /* ---- request line: 400 ---- */
    { .name = "double_space", R("GET  / HTTP/1.1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §3: single SP (we do not split on whitespace runs)" },
    { .name = "space_after_version", R("GET / HTTP/1.1 \r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §3" },
    { .name = "tab_separator", R("GET\t/ HTTP/1.1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §3: SP, not HTAB" },
    { .name = "no_version", R("GET /\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §3: HTTP/0.9 simple requests are not HTTP/1.1" },
    { .name = "version_lowercase", R("GET / http/1.1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §2.3: HTTP-name is case-sensitive" },
    { .name = "version_two_digit_minor", R("GET / HTTP/1.10\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §2.3: DIGIT \".\" DIGIT" },
    { .name = "version_two_digit_major", R("GET / HTTP/11.1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §2.3" },
    { .name = "version_no_minor", R("GET / HTTP/1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §2.3" },
    { .name = "empty_method", R(" / HTTP/1.1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9110 §9.1: method = token" },
    { .name = "method_not_token", R("G(T / HTTP/1.1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9110 §9.1" },
    { .name = "target_fragment", R("GET /a#b HTTP/1.1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §3.2: no fragment in a request-target" },
    { .name = "target_relative", R("GET a/b HTTP/1.1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §3.2: origin-form starts with '/'" },
    { .name = "target_star_not_options", R("GET * HTTP/1.1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §3.2.4: asterisk-form only for OPTIONS" },
    { .name = "target_authority_form", R("OPTIONS example.com:80 HTTP/1.1\r\n" HOST "\r\n"),
      .status = 400, .rule = "RFC 9112 §3.2.3: authority-form only for CONNECT" },
    { .name = "target_del", R("GET /\x7f HTTP/1.1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 3986 §2: DEL is not a URI character" },
    { .name = "target_non_ascii", R("GET /caf\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n"), .status = 400,
      .rule = "RFC 3986 §2: non-ASCII must be percent-encoded" },
    { .name = "absolute_userinfo", R("GET http://u:p@h/ HTTP/1.1\r\n" HOST "\r\n"),
      .status = 400, .rule = "RFC 9110 §4.2.4: userinfo is an error" },
    { .name = "absolute_empty_authority", R("GET http:///x HTTP/1.1\r\n" HOST "\r\n"),
      .status = 400, .rule = "RFC 9110 §4.2.1: an http URI has a host" },
    { .name = "absolute_other_scheme", R("GET ftp://h/x HTTP/1.1\r\n" HOST "\r\n"),
      .status = 400, .rule = "we serve http and https targets only" },

    /* ---- Host: 400 ---- */
    { .name = "host_missing", R("GET / HTTP/1.1\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §3.2: MUST 400 a 1.1 request without Host" },
    { .name = "host_twice", R(GET_HEAD HOST "\r\n"), .status = 400,
      .rule = "RFC 9112 §3.2: MUST 400 more than one Host" },
    { .name = "host_twice_different", R(GET_HEAD "host: b\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §3.2" },

    /* ---- framing and smuggling (RFC 9112 §6.3): 400 ---- */
    { .name = "cl_and_te",
      R("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §6.3 rule 3: CL.TE smuggling, refused" },
    { .name = "te_and_cl",
      R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §6.3 rule 3: TE.CL smuggling, refused" },
    { .name = "cl_twice_same",
      R("POST / HTTP/1.1\r\n" HOST "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx"),
      .status = 400, .rule = "RFC 9112 §6.3 rule 5: we refuse even identical repeats" },
    { .name = "cl_twice_different",
      R("POST / HTTP/1.1\r\n" HOST "Content-Length: 1\r\nContent-Length: 2\r\n\r\nxy"),
      .status = 400, .rule = "RFC 9112 §6.3 rule 5: MUST be treated as unrecoverable" },
    { .name = "cl_list", R("POST / HTTP/1.1\r\n" HOST "Content-Length: 1, 1\r\n\r\nx"),
      .status = 400, .rule = "RFC 9110 §8.6: we do not accept the list form" },
    { .name = "cl_plus", R("POST / HTTP/1.1\r\n" HOST "Content-Length: +1\r\n\r\nx"),
      .status = 400, .rule = "RFC 9110 §8.6: 1*DIGIT, no sign" },
    { .name = "cl_minus", R("POST / HTTP/1.1\r\n" HOST "Content-Length: -1\r\n\r\n"),
      .status = 400, .rule = "RFC 9110 §8.6" },
    { .name = "cl_hex", R("POST / HTTP/1.1\r\n" HOST "Content-Length: 0x1\r\n\r\nx"),
      .status = 400, .rule = "RFC 9110 §8.6" },
    { .name = "cl_underscore", R("POST / HTTP/1.1\r\n" HOST "Content-Length: 1_0\r\n\r\n"),
      .status = 400, .rule = "RFC 9110 §8.6" },
    { .name = "cl_inner_space", R("POST / HTTP/1.1\r\n" HOST "Content-Length: 1 0\r\n\r\n"),
      .status = 400, .rule = "RFC 9110 §8.6" },
    { .name = "cl_empty", R("POST / HTTP/1.1\r\n" HOST "Content-Length: \r\n\r\n"),
      .status = 400, .rule = "RFC 9110 §8.6" },
    { .name = "cl_overflow",
      R("POST / HTTP/1.1\r\n" HOST "Content-Length: 18446744073709551616\r\n\r\n"),
      .status = 400, .rule = "overflow is checked before the multiply" },
    { .name = "cl_int64_max_plus_one",
      R("POST / HTTP/1.1\r\n" HOST "Content-Length: 9223372036854775808\r\n\r\n"),
      .status = 400, .rule = "our bound: a length fits off_t" },
    { .name = "cl_int64_max",
      R("POST / HTTP/1.1\r\n" HOST "Content-Length: 9223372036854775807\r\n\r\n"),
      .status = 413, .rule = "a valid number over max_body" },
    { .name = "te_final_not_chunked",
      R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, gzip\r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §6.3 rule 4: chunked MUST be final" },
    { .name = "te_gzip", R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip\r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §6.3 rule 4" },
    { .name = "te_identity",
      R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: identity\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §6.3 rule 4 (identity was removed in RFC 7230)" },
    { .name = "te_chunked_twice",
      R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §7: MUST NOT apply chunked more than once" },
    { .name = "te_chunked_two_lines",
      R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
      .status = 400, .rule = "RFC 9110 §5.3 + RFC 9112 §7" },
    { .name = "te_second_line_not_chunked",
      R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §6.3 rule 4 over the combined list" },
    { .name = "te_empty", R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: \r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §6.1: 1#transfer-coding" },
    { .name = "te_chunked_parameter",
      R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n"),
      .status = 400, .rule = "chunked takes no parameters: not chunked, so not final" },
    { .name = "te_xchunked", R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: xchunked\r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §6.3 rule 4" },
    { .name = "te_http10",
      R("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §6.1: TE in 1.0 means faulty framing" },
    { .name = "te_hidden_by_bare_lf",
      R("POST / HTTP/1.1\r\n" HOST "X: y\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §2.2: bare LF would hide a TE from a proxy" },
    { .name = "te_gzip_chunked",
      R("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
      .status = 501, .rule = "RFC 9112 §6.1: SHOULD 501 a coding we do not know" },

    /* ---- chunked body: 400 / 413 / 431 ---- */
    { .name = "chunk_size_0x", R(CHUNKED_HEAD "0x5\r\nhello\r\n0\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §7.1: 1*HEXDIG" },
    { .name = "chunk_size_minus", R(CHUNKED_HEAD "-5\r\nhello\r\n0\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §7.1" },
    { .name = "chunk_size_leading_space", R(CHUNKED_HEAD " 5\r\nhello\r\n0\r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §7.1" },
    { .name = "chunk_size_empty", R(CHUNKED_HEAD "\r\nhello\r\n0\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §7.1" },
    { .name = "chunk_size_bws_no_ext", R(CHUNKED_HEAD "5 \r\nhello\r\n0\r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §7.1.1: BWS only before ';'" },
    { .name = "chunk_size_overflow",
      R(CHUNKED_HEAD "10000000000000000\r\nx\r\n0\r\n\r\n"), .limits = &huge_body,
      .status = 400, .rule = "checked before the shift (nginx CVE-2013-2028)" },
    { .name = "chunk_size_overflow_default",
      R(CHUNKED_HEAD "fffffffffffffffff\r\nx\r\n0\r\n\r\n"), .status = 400,
      .rule = "overflow is found before the size is compared with max_body" },
    { .name = "chunk_data_too_long", R(CHUNKED_HEAD "5\r\nhelloX\r\n0\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §7.1: chunk-data CRLF" },
    { .name = "chunk_data_bare_lf", R(CHUNKED_HEAD "5\r\nhello\n0\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §7.1 + §2.2" },
    { .name = "chunk_size_bare_lf", R(CHUNKED_HEAD "5\nhello\r\n0\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §7.1 + §2.2" },
    { .name = "chunk_ext_ctl", R(CHUNKED_HEAD "5;a\x01\r\nhello\r\n0\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §7.1.1: extension bytes are tokens or quoted-string" },
    { .name = "chunk_ext_bare_lf", R(CHUNKED_HEAD "5;a\nhello\r\n0\r\n\r\n"), .status = 400,
      .rule = "RFC 9112 §7.1.1 + §2.2" },
    { .name = "chunk_trailer_obs_fold", R(CHUNKED_HEAD "0\r\nX: a\r\n b\r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §7.1.2 + §5.2" },
    { .name = "chunk_trailer_space_before_colon", R(CHUNKED_HEAD "0\r\nX : a\r\n\r\n"),
      .status = 400, .rule = "RFC 9112 §7.1.2 + §5.1" },
    { .name = "chunk_last_bare_lf", R(CHUNKED_HEAD "0\r\n\n"), .status = 400,
      .rule = "RFC 9112 §7.1 + §2.2" },
    { .name = "chunked_over_limit", R(CHUNKED_HEAD "5\r\n12345\r\n4\r\n6789\r\n0\r\n\r\n"),
      .limits = &small_body, .status = 413, .rule = "max_body, checked at the size line" },
    { .name = "length_over_limit",
      R("POST / HTTP/1.1\r\n" HOST "Content-Length: 9\r\n\r\n123456789"),
      .limits = &small_body, .status = 413, .rule = "max_body, checked at the head" },
    { .name = "length_over_default_limit",
      R("POST / HTTP/1.1\r\n" HOST "Content-Length: 1048577\r\n\r\n"), .status = 413,
      .rule = "max_body defaults to 1 MiB" },

    /* ---- methods and versions: 501 / 505 ---- */
    { .name = "method_lowercase", R("get / HTTP/1.1\r\n" HOST "\r\n"), .status = 501,
      .rule = "RFC 9110 §9.1: methods are case-sensitive" },
    { .name = "method_connect", R("CONNECT example.com:443 HTTP/1.1\r\n" HOST "\r\n"),
      .status = 501, .rule = "an origin server, not a tunnel: CONNECT is not implemented" },
    { .name = "method_propfind", R("PROPFIND / HTTP/1.1\r\n" HOST "\r\n"), .status = 501,
      .rule = "RFC 9110 §9.1: SHOULD 501 an unknown method" },
    { .name = "method_long", R("FOOBARBAZ / HTTP/1.1\r\n" HOST "\r\n"), .status = 501,
      .rule = "longer than any method we know: 501 without waiting" },
    { .name = "version_2_0", R("GET / HTTP/2.0\r\n" HOST "\r\n"), .status = 505,
      .rule = "RFC 9110 §15.6.6" },
    { .name = "version_0_9", R("GET / HTTP/0.9\r\n" HOST "\r\n"), .status = 505,
      .rule = "RFC 9110 §15.6.6" },
    { .name = "version_3_0", R("GET / HTTP/3.0\r\n" HOST "\r\n"), .status = 505,
      .rule = "RFC 9110 §15.6.6" },

    /* ---- limits: generated ---- */
    { .name = "gen_line_8193", .status = 414, .rule = "request line over 8 KiB" },
    { .name = "gen_headers_8193", .status = 431, .rule = "header section over 8 KiB" },
    { .name = "gen_headers_101", .status = 431, .rule = "more than 100 fields" },
    { .name = "gen_method_no_end", .status = 501,
      .rule = "a long method is 501 before the limit" },
    { .name = "gen_crlf_flood", .status = 414,
      .rule = "leading empty lines count against the request line" },
    { .name = "gen_chunk_zeros", .status = 400,
      .rule = "a chunk-size line is at most 4 KiB" },
};

size_t corpus_count = sizeof corpus / sizeof corpus[0];

static struct corpus_case *find(const char *name)
{
    size_t i;

    for (i = 0; i < corpus_count; i++)
        if (strcmp(corpus[i].name, name) == 0)
            return &corpus[i];
    fprintf(stderr, "corpus: no case %s\n", name);
    abort();
}

static char *fill(char *p, int c, size_t n)
{
    memset(p, c, n);
    return p + n;
}

static char *put(char *p, const char *s)
{
    size_t n = strlen(s);

    memcpy(p, s, n);
    return p + n;
}

static void set(const char *name, char *buf, char *end)
{
    struct corpus_case *c = find(name);

    c->raw = buf;
    c->len = (size_t)(end - buf);
}

void corpus_init(void)
{
    static char line_ok[8300], line_bad[8300], target_ok[8200];
    static char hdr_ok[8300], hdr_bad[8300], many_ok[2000], many_bad[2000];
    static char method[64], crlf[8300], zeros[5200];
    static bool done;
    char *p;
    int i;

    if (done)
        return;
    done = true;
    /* "GET /" + 8176 'a' + " HTTP/1.1\r\n" is 8192 bytes */
    p = put(line_ok, "GET /");
    p = fill(p, 'a', 8176);
    *p = '\0';
    memcpy(target_ok, line_ok + 4, (size_t)(p - line_ok) - 4 + 1);
    p = put(p, " HTTP/1.1\r\n" HOST "\r\n");
    set("gen_line_8192", line_ok, p);
    find("gen_line_8192")->target = target_ok;
    find("gen_line_8192")->path = target_ok;
    p = put(line_bad, "GET /");
    p = fill(p, 'a', 8177);
    p = put(p, " HTTP/1.1\r\n" HOST "\r\n");
    set("gen_line_8193", line_bad, p);

    /* "Host: a\r\n" (9) + "X: " + v + "\r\n" (5 + v) + "\r\n" (2) = 8192 */
    p = put(hdr_ok, "GET / HTTP/1.1\r\n" HOST "X: ");
    p = fill(p, 'v', 8176);
    p = put(p, "\r\n\r\n");
    set("gen_headers_8192", hdr_ok, p);
    p = put(hdr_bad, "GET / HTTP/1.1\r\n" HOST "X: ");
    p = fill(p, 'v', 8177);
    p = put(p, "\r\n\r\n");
    set("gen_headers_8193", hdr_bad, p);

    p = put(many_ok, "GET / HTTP/1.1\r\n" HOST);
    for (i = 1; i < 100; i++)
        p += sprintf(p, "X-%d: v\r\n", i);
    p = put(p, "\r\n");
    set("gen_headers_100", many_ok, p);
    p = put(many_bad, "GET / HTTP/1.1\r\n" HOST);
    for (i = 1; i < 101; i++)
        p += sprintf(p, "X-%d: v\r\n", i);
    p = put(p, "\r\n");
    set("gen_headers_101", many_bad, p);

    p = fill(method, 'A', 40);
    set("gen_method_no_end", method, p);

    for (p = crlf, i = 0; i < 4100; i++)
        p = put(p, "\r\n");
    set("gen_crlf_flood", crlf, p);

    p = put(zeros, CHUNKED_HEAD);
    p = fill(p, '0', 5000);
    p = put(p, "5\r\nhello\r\n0\r\n\r\n");
    set("gen_chunk_zeros", zeros, p);
}

/* ---- guard pages ---- */

void guard_init(struct guard *g, size_t max)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t usable = (max + (size_t)page - 1) / (size_t)page * (size_t)page;

    g->map_len = usable + (size_t)page;
    g->usable = usable;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    if (mprotect(g->map + usable, (size_t)page, PROT_NONE) < 0) {
        perror("mprotect");
        abort();
    }
}

char *guard_place(struct guard *g, const char *src, size_t n)
{
    char *dst;

    if (n > g->usable) {
        fprintf(stderr, "guard: %zu bytes do not fit %zu\n", n, g->usable);
        abort();
    }
    dst = g->map + g->usable - n;
    if (n)
        memcpy(dst, src, n);
    return dst;
}

void guard_free(struct guard *g)
{
    munmap(g->map, g->map_len);
}

/* ---- the engine ---- */

/* Hides buf[from, to) from the parser during one call. */
struct veil {
    char *buf;
    size_t from, to;
    char saved[16384];
};

static void veil_on(struct veil *v, char *buf, size_t from, size_t to)
{
    if (to - from > sizeof v->saved) {
        fprintf(stderr, "veil: %zu bytes is more than it can hide\n", to - from);
        abort();
    }
    v->buf = buf;
    v->from = from;
    v->to = to;
    memcpy(v->saved, buf + from, to - from);
    memset(buf + from, 'Z', to - from); /* a tchar and no hex digit */
#ifdef CORPUS_ASAN
    ASAN_POISON_MEMORY_REGION(buf + from, to - from);
#endif
}

static void veil_off(struct veil *v)
{
#ifdef CORPUS_ASAN
    ASAN_UNPOISON_MEMORY_REGION(v->buf + v->from, v->to - v->from);
#endif
    memcpy(v->buf + v->from, v->saved, v->to - v->from);
}

static struct guard body_guard;

void msg_parse(const char *cbuf, size_t len, const size_t *cuts, size_t ncuts,
               const sp_http_limits *limits, struct msg_result *r)
{
    char *buf = (char *)cbuf; /* the veil writes, and restores */
    size_t ci = 0, avail, pos;
    sp_http_body body;
    ssize_t n;

    if (!body_guard.map)
        guard_init(&body_guard, 1 << 16);
    memset(r, 0, sizeof *r);
    sp_http_request_init(&r->req, r->headers, CORPUS_MAX_HEADERS, limits);
    avail = ncuts ? cuts[0] : len;

    for (;;) {
        struct veil v;

        if (avail < len)
            veil_on(&v, buf, avail, len);
        n = sp_http_parse_request(&r->req, buf, avail);
        if (avail < len)
            veil_off(&v);
        if (n < 0) {
            r->status = (int)-n;
            return;
        }
        if (n > 0)
            break;
        if (avail == len) {
            r->status = CORPUS_INCOMPLETE;
            return;
        }
        avail = ++ci < ncuts ? cuts[ci] : len;
    }
    r->head_len = (size_t)n;
    pos = (size_t)n;
    sp_http_body_init(&body, &r->req, limits);
    while (!sp_http_body_done(&body)) {
        const char *d, *piece;
        size_t dl;

        if (pos == avail) {
            if (avail == len) {
                r->status = CORPUS_INCOMPLETE;
                return;
            }
            avail = ++ci < ncuts ? cuts[ci] : len;
            continue;
        }
        piece = guard_place(&body_guard, buf + pos, avail - pos);
        n = sp_http_body_parse(&body, piece, avail - pos, &d, &dl);
        if (n < 0) {
            r->status = (int)-n;
            return;
        }
        if (n == 0 || (size_t)n > avail - pos || d < piece ||
            d + dl > piece + (avail - pos)) {
            fprintf(stderr, "body decoder broke its contract: n=%zd\n", n);
            abort();
        }
        if (r->body_len + dl > sizeof r->body) {
            fprintf(stderr, "body too large for the test\n");
            abort();
        }
        memcpy(r->body + r->body_len, d, dl);
        r->body_len += dl;
        pos += (size_t)n;
    }
    r->consumed = pos;
}

static void say(char *why, size_t cap, const char *fmt, const char *a,
                const char *b)
{
    size_t used = strlen(why);

    if (used < cap)
        snprintf(why + used, cap - used, fmt, a, b);
}

static void span(char *out, size_t cap, const char *p, size_t n)
{
    size_t i, o = 0;

    if (!p) {
        snprintf(out, cap, "(null)");
        return;
    }
    for (i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c >= 0x20 && c < 0x7f)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    out[o] = '\0';
}

static bool span_eq(const char *a, size_t an, const char *b, size_t bn)
{
    if (!a || !b)
        return a == b;
    return an == bn && memcmp(a, b, an) == 0;
}

void msg_diff(const struct msg_result *a, const struct msg_result *b,
              char *why, size_t cap)
{
    char x[256], y[256];
    size_t i;

    why[0] = '\0';
#define NUM(field)                                                        \
    if (a->field != b->field) {                                           \
        snprintf(x, sizeof x, "%lld", (long long)a->field);               \
        snprintf(y, sizeof y, "%lld", (long long)b->field);               \
        say(why, cap, #field " %s vs %s; ", x, y);                        \
    }
#define SPAN(p, n)                                                        \
    if (!span_eq(a->p, a->n, b->p, b->n)) {                               \
        span(x, sizeof x, a->p, a->n);                                    \
        span(y, sizeof y, b->p, b->n);                                    \
        say(why, cap, #p " \"%s\" vs \"%s\"; ", x, y);                    \
    }
    NUM(status);
    if (a->status != 0 || b->status != 0)
        return;
    NUM(req.method);
    NUM(req.minor_version);
    NUM(req.keep_alive);
    NUM(req.expect_continue);
    NUM(req.body_kind);
    NUM(req.content_length);
    NUM(req.num_headers);
    NUM(head_len);
    NUM(consumed);
    NUM(body_len);
    SPAN(req.target, req.target_len);
    SPAN(req.path, req.path_len);
    SPAN(req.query, req.query_len);
    if (a->body_len == b->body_len && memcmp(a->body, b->body, a->body_len) != 0)
        say(why, cap, "body %s%s differs; ", "", "");
    for (i = 0; i < a->req.num_headers && i < b->req.num_headers; i++) {
        SPAN(req.headers[i].name, req.headers[i].name_len);
        SPAN(req.headers[i].value, req.headers[i].value_len);
    }
#undef NUM
#undef SPAN
}

void corpus_check(const struct corpus_case *c, const struct msg_result *r,
                  char *why, size_t cap)
{
    char x[256], y[256];

    why[0] = '\0';
    if (r->status != c->status) {
        snprintf(x, sizeof x, "%d", c->status);
        snprintf(y, sizeof y, "%d", r->status);
        say(why, cap, "expected status %s, got %s; ", x, y);
        return;
    }
    if (c->status != 0)
        return;
#define EXPECT_NUM(want, got, what)                                       \
    if ((long long)(want) != (long long)(got)) {                          \
        snprintf(x, sizeof x, "%lld", (long long)(want));                 \
        snprintf(y, sizeof y, "%lld", (long long)(got));                  \
        say(why, cap, "expected " what " %s, got %s; ", x, y);            \
    }
#define EXPECT_STR(want, p, n, what)                                      \
    if (!span_eq((want), (want) ? strlen(want) : 0, (p), (n))) {          \
        span(x, sizeof x, (want), (want) ? strlen(want) : 0);             \
        span(y, sizeof y, (p), (n));                                      \
        say(why, cap, "expected " what " \"%s\", got \"%s\"; ", x, y);    \
    }
    EXPECT_NUM(c->method, r->req.method, "method");
    EXPECT_STR(c->target, r->req.target, r->req.target_len, "target");
    EXPECT_STR(c->path, r->req.path, r->req.path_len, "path");
    EXPECT_STR(c->query, r->req.query, r->req.query_len, "query");
    EXPECT_NUM(c->minor, r->req.minor_version, "minor version");
    EXPECT_NUM(c->keep_alive, r->req.keep_alive, "keep_alive");
    EXPECT_NUM(c->expect_continue, r->req.expect_continue, "expect_continue");
    if (c->num_headers >= 0)
        EXPECT_NUM(c->num_headers, r->req.num_headers, "header count");
    EXPECT_NUM(c->body_kind, r->req.body_kind, "body kind");
    EXPECT_STR(c->body ? c->body : "", r->body, r->body_len, "body");
    EXPECT_NUM(c->consumed ? c->consumed : c->len, r->consumed, "bytes consumed");
#undef EXPECT_NUM
#undef EXPECT_STR
}
