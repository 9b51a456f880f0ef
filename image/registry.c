/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The registry client (see registry.h). One libcurl easy handle per registry, so connections are
 * reused; every request is a GET built here from checked parts (repository names, tags and digests
 * passed the reference grammar); every response is bounded while it arrives, never after.
 *
 * Library code: returns -errno, never logs above debug; failures describe themselves in the report.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "fs.h"
#include "log.h"
#include "ojson.h"
#include "registry.h"
#include "sha256.h"
#include "store-internal.h"

#define REGISTRY_MAX_REDIRECTS 5
#define REGISTRY_ERROR_BODY_MAX (64 * 1024)
#define REGISTRY_CONNECT_TIMEOUT 30L
#define REGISTRY_LOW_SPEED_LIMIT 1024L
#define REGISTRY_LOW_SPEED_TIME 60L
#define REGISTRY_FILE_BUF (1U << 20)
/* Challenges one registry client answers in all: one per request, and a few per pull for expired tokens. */
#define REGISTRY_MAX_AUTH 8

struct Registry {
        CURL *curl;
        char *host;                     /* host[:port] we connect to */
        char *repository;
        char *name;                     /* "host/repository" for messages */
        bool loopback;
        bool plain_http;                /* decided: a loopback registry that does not speak TLS */
        bool scheme_known;
        char *ca_file;
        char *authorization;            /* the Authorization header value for the registry, or NULL */
        unsigned auth_count;            /* challenges answered (tokens expire during long pulls) */
        char *user, *password;          /* from an auth file, or NULL */
        char *auth_file;                /* where they came from */
        char curl_error[CURL_ERROR_SIZE];

        /* The response being received. */
        long status;
        char content_type[256];
        char docker_digest[128];
        char content_range[128];
        char *www_authenticate;
        size_t www_authenticate_len;
        bool header_too_long;
};

/* Where the body of one response goes. */
typedef struct Sink {
        Registry *registry;
        bool started;                   /* the first bytes of this response have been seen */
        /* Memory (manifests, configs, tokens). */
        char *buf;
        size_t len, max;
        /* A file (blobs): written at offset, at most limit bytes in all, hashed. */
        int fd;
        uint64_t offset, limit;
        uint64_t resumed_from;          /* the offset a Range request asked for */
        Sha256 *hash;
        Progress *progress;
        /* Error bodies, whatever the sink. */
        char *err_buf;
        size_t err_len;
        int error;                      /* why the transfer was stopped by us */
        uint64_t received;
} Sink;

Registry *registry_free(Registry *r) {
        if (!r)
                return NULL;
        if (r->curl)
                curl_easy_cleanup(r->curl);
        free(r->host);
        free(r->repository);
        free(r->name);
        free(r->ca_file);
        if (r->authorization)
                explicit_bzero(r->authorization, strlen(r->authorization));
        free(r->authorization);
        free(r->user);
        if (r->password)
                explicit_bzero(r->password, strlen(r->password));
        free(r->password);
        free(r->auth_file);
        free(r->www_authenticate);
        free(r);
        return NULL;
}

const char *registry_name(const Registry *r) {
        return r->name;
}

/* ------------------------------------------------------------------------------------------------ */
/* Credentials                                                                                      */

static int auth_file_try(Registry *r, const char *path, bool explicit, ImageReport *rep) {
        _cleanup_free_ char *buf = NULL;
        size_t n;
        int k = read_file(path, AUTH_FILE_MAX, &buf, &n);
        if (k == -ENOENT && !explicit)
                return 0;
        if (k < 0) {
                if (!explicit) {
                        log_debug_errno(k, "Cannot read credentials file '%s', ignoring: %m", path);
                        return 0;
                }
                return report_fail(rep, k, "cannot read the credentials file '%s': %m", path);
        }
        k = auth_file_lookup(buf, n, r->host, r->repository, &r->user, &r->password);
        explicit_bzero(buf, n);
        if (k == -ENOENT)
                return 0;
        if (k < 0) {
                if (!explicit) {
                        log_debug_errno(k, "Credentials file '%s' is not valid, ignoring: %m", path);
                        return 0;
                }
                return report_fail(rep, k, "credentials file '%s': invalid entry for %s (expected {\"auths\": "
                                   "{\"%s\": {\"auth\": base64 of USER:PASSWORD}}})", path, r->host, r->host);
        }
        r->auth_file = strdup(path);
        return r->auth_file ? 1 : report_fail(rep, -ENOMEM, "out of memory");
}

static int credentials_load(Registry *r, const char *auth_file, ImageReport *rep) {
        if (auth_file)
                return auth_file_try(r, auth_file, true, rep);
        char path[PATH_MAX];
        const char *env = getenv("REGISTRY_AUTH_FILE");
        if (env && *env)
                return auth_file_try(r, env, true, rep);
        int k;
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        if (xdg && *xdg) {
                snprintf(path, sizeof(path), "%s/containers/auth.json", xdg);
                if ((k = auth_file_try(r, path, false, rep)) != 0)
                        return k;
        }
        snprintf(path, sizeof(path), "/run/containers/%u/auth.json", (unsigned) geteuid());
        if ((k = auth_file_try(r, path, false, rep)) != 0)
                return k;
        const char *dc = getenv("DOCKER_CONFIG"), *home = getenv("HOME");
        if (dc && *dc)
                snprintf(path, sizeof(path), "%s/config.json", dc);
        else if (home && *home)
                snprintf(path, sizeof(path), "%s/.docker/config.json", home);
        else
                return 0;
        return auth_file_try(r, path, false, rep);
}

/* "Basic base64(user:password)". */
static int basic_header(const char *user, const char *password, char **ret) {
        _cleanup_free_ char *plain = NULL;
        int n = asprintf(&plain, "%s:%s", user, password);
        if (n < 0)
                return -ENOMEM;
        _cleanup_free_ char *b64 = malloc(((size_t) n + 2) / 3 * 4 + 1);
        if (!b64)
                return -ENOMEM;
        EVP_EncodeBlock((unsigned char *) b64, (const unsigned char *) plain, n);
        explicit_bzero(plain, (size_t) n);
        if (asprintf(ret, "Basic %s", b64) < 0)
                return -ENOMEM;
        explicit_bzero(b64, strlen(b64));
        return 0;
}

int registry_new(const ImageRef *ref, const RegistryOptions *o, Registry **ret, ImageReport *rep) {
        static bool global_done = false;

        assert_return(ref && ret, -EINVAL);
        if (!global_done) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return report_fail(rep, -EIO, "cannot initialize libcurl");
                global_done = true;
        }
        _cleanup_(registry_freep) Registry *r = calloc(1, sizeof(*r));
        if (!r)
                return report_fail(rep, -ENOMEM, "out of memory");
        r->host = strdup(image_ref_registry_host(ref));
        r->repository = strdup(ref->path);
        r->curl = curl_easy_init();
        if (!r->host || !r->repository || !r->curl || asprintf(&r->name, "%s/%s", ref->domain, ref->path) < 0)
                return report_fail(rep, -ENOMEM, "out of memory");
        for (char *c = r->host; *c; c++) /* host names compare as url_origin() gives them */
                if (*c >= 'A' && *c <= 'Z')
                        *c = (char) (*c - 'A' + 'a');
        r->loopback = host_is_loopback(r->host);
        if (o && o->ca_file && !(r->ca_file = strdup(o->ca_file)))
                return report_fail(rep, -ENOMEM, "out of memory");
        int k = credentials_load(r, o ? o->auth_file : NULL, rep);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(r);
        return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* HTTP                                                                                             */

static size_t on_header(char *data, size_t size, size_t nitems, void *userdata) {
        Registry *r = userdata;
        size_t n = size * nitems;
        /* "Name: value\r\n"; the status line and the blank line have no colon. */
        const char *colon = memchr(data, ':', n);
        if (!colon)
                return n;
        size_t nl = (size_t) (colon - data);
        const char *v = colon + 1;
        size_t vl = n - nl - 1;
        while (vl > 0 && (*v == ' ' || *v == '\t'))
                v++, vl--;
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
                vl--;

        struct {
                const char *name;
                char *buf;
                size_t size;
        } fixed[] = {
                { "content-type", r->content_type, sizeof(r->content_type) },
                { "docker-content-digest", r->docker_digest, sizeof(r->docker_digest) },
                { "content-range", r->content_range, sizeof(r->content_range) },
        };
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                if (nl == strlen(fixed[i].name) && strncasecmp(data, fixed[i].name, nl) == 0) {
                        if (vl >= fixed[i].size) {
                                r->header_too_long = true;
                                return n;
                        }
                        memcpy(fixed[i].buf, v, vl);
                        fixed[i].buf[vl] = '\0';
                        return n;
                }
        if (nl == strlen("www-authenticate") && strncasecmp(data, "www-authenticate", nl) == 0) {
                /* Several headers are one list (RFC 7230): join them with ", ". */
                size_t need = r->www_authenticate_len + (r->www_authenticate_len ? 2 : 0) + vl;
                if (need > AUTH_HEADER_MAX) {
                        r->header_too_long = true;
                        return n;
                }
                char *g = realloc(r->www_authenticate, need + 1);
                if (!g)
                        return 0;
                r->www_authenticate = g;
                if (r->www_authenticate_len)
                        memcpy(g + r->www_authenticate_len, ", ", 2), r->www_authenticate_len += 2;
                memcpy(g + r->www_authenticate_len, v, vl);
                r->www_authenticate_len += vl;
                g[r->www_authenticate_len] = '\0';
        }
        return n;
}

/* The first bytes of a blob response: a 200 to a Range request starts the file over. */
static int sink_start(Sink *s) {
        s->started = true;
        long status = 0;
        curl_easy_getinfo(s->registry->curl, CURLINFO_RESPONSE_CODE, &status);
        s->registry->status = status;
        if (s->fd < 0 || status / 100 != 2)
                return 0;
        if (status == 200 && s->offset > 0) {
                log_debug("The registry ignored our Range request: downloading from the start");
                if (ftruncate(s->fd, 0) < 0 || sha256_reset(s->hash) < 0)
                        return -errno;
                s->offset = 0;
                if (s->progress)
                        s->progress->bytes = 0;
        }
        if (status == 206) {
                /* "bytes START-END/TOTAL": START must be where we are. */
                unsigned long long start = 0;
                if (sscanf(s->registry->content_range, "bytes %llu-", &start) != 1 || start != s->offset)
                        return -EBADMSG;
        }
        return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata) {
        Sink *s = userdata;
        size_t n = size * nmemb;
        if (!s->started && (s->error = sink_start(s)) < 0)
                return 0;
        if (s->registry->status / 100 != 2) {
                /* An error answer: keep its beginning for the message. */
                size_t take = MIN(n, REGISTRY_ERROR_BODY_MAX - s->err_len);
                if (take > 0) {
                        char *g = realloc(s->err_buf, s->err_len + take + 1);
                        if (!g)
                                return 0;
                        s->err_buf = g;
                        memcpy(g + s->err_len, data, take);
                        s->err_len += take;
                        g[s->err_len] = '\0';
                }
                return n;
        }
        s->received += n;
        if (s->fd >= 0) {
                if (s->offset + n > s->limit) {
                        s->error = -EFBIG;
                        return 0;
                }
                const char *p = data;
                size_t left = n;
                while (left > 0) {
                        ssize_t k = pwrite(s->fd, p, left, (off_t) s->offset);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0) {
                                s->error = -errno;
                                return 0;
                        }
                        p += k;
                        left -= (size_t) k;
                        s->offset += (uint64_t) k;
                }
                if (sha256_update(s->hash, data, n) < 0) {
                        s->error = -EIO;
                        return 0;
                }
                if (s->progress)
                        progress_add(s->progress, n, 0);
                return n;
        }
        if (s->len + n > s->max) {
                s->error = -EFBIG;
                return 0;
        }
        char *g = realloc(s->buf, s->len + n + 1);
        if (!g) {
                s->error = -ENOMEM;
                return 0;
        }
        s->buf = g;
        memcpy(g + s->len, data, n);
        s->len += n;
        g[s->len] = '\0';
        return n;
}

/* Host and port of URL (lowercase host, ":port" when given) and its scheme. */
static int url_origin(const char *url, char **ret_host, bool *ret_https) {
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL, *port = NULL;
        int r = 0;
        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
                r = -EINVAL;
        if (r >= 0 && curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
                port = NULL;
        if (r >= 0) {
                for (char *c = host; *c; c++)
                        if (*c >= 'A' && *c <= 'Z')
                                *c = (char) (*c - 'A' + 'a');
                if (asprintf(ret_host, "%s%s%s", host, port ? ":" : "", port ?: "") < 0)
                        r = -ENOMEM;
                else
                        *ret_https = strcasecmp(scheme, "https") == 0;
                if (r >= 0 && !*ret_https && strcasecmp(scheme, "http") != 0) {
                        free(*ret_host);
                        r = -EPROTONOSUPPORT;
                }
        }
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
        curl_url_cleanup(u);
        return r;
}

/* The "code: message" of a registry error body, sanitized, or "". */
static void error_body_message(const char *body, size_t len, char *buf, size_t size) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        char err[64];
        buf[0] = '\0';
        if (!body || ojson_parse_object(body, len, REGISTRY_ERROR_BODY_MAX, 8, &j, err, sizeof(err)) < 0)
                return;
        json_t *e = json_array_get(json_object_get(j, "errors"), 0);
        const char *code = ojson_string(e, "code"), *msg = ojson_string(e, "message");
        if (!code && !msg)
                return;
        snprintf(buf, size, " (%s%s%s)", code ?: "", code && msg ? ": " : "", msg ?: "");
        for (char *c = buf; *c; c++)
                if ((unsigned char) *c < 0x20 || (unsigned char) *c >= 0x7f)
                        *c = '?';
}

/* GET URL into SINK, following redirects ourselves. AUTH (a whole header value, may be NULL) is sent
 * only to AUTH_HOST over https, or to a loopback AUTH_HOST. Returns the final HTTP status, or -errno
 * (the report says why) when there was none. */
static int http_get(Registry *r, const char *url, const char *accept, const char *range, const char *auth,
                    const char *auth_host, Sink *sink, ImageReport *rep) {
        _cleanup_free_ char *current = strdup(url);
        if (!current)
                return report_fail(rep, -ENOMEM, "out of memory");

        for (unsigned hop = 0;; hop++) {
                _cleanup_free_ char *host = NULL, *auth_line = NULL, *range_line = NULL, *accept_line = NULL;
                bool https = false;
                int k = url_origin(current, &host, &https);
                if (k < 0)
                        return report_fail(rep, k, "refusing URL '%.200s' (only http and https)", current);
                if (!https && !host_is_loopback(host))
                        return report_fail(rep, -EPERM, "refusing plain HTTP to '%s': only a loopback registry may "
                                           "be reached without TLS", host);

                struct curl_slist *headers = NULL, *h;
                bool ok = true;
                if (accept && asprintf(&accept_line, "Accept: %s", accept) < 0)
                        ok = false;
                if (ok && range && asprintf(&range_line, "Range: %s", range) < 0)
                        ok = false;
                if (ok && auth && auth_host && streq(host, auth_host) && (https || host_is_loopback(host)) &&
                    asprintf(&auth_line, "Authorization: %s", auth) < 0)
                        ok = false;
                const char *lines[] = { accept_line, range_line, auth_line };
                for (size_t i = 0; ok && i < ELEMENTSOF(lines); i++) {
                        if (!lines[i])
                                continue;
                        h = curl_slist_append(headers, lines[i]);
                        if (!h)
                                ok = false;
                        else
                                headers = h;
                }
                if (!ok) {
                        curl_slist_free_all(headers);
                        return report_fail(rep, -ENOMEM, "out of memory");
                }

                CURL *c = r->curl;
                curl_easy_reset(c);
                r->status = 0;
                r->content_type[0] = r->docker_digest[0] = r->content_range[0] = '\0';
                free(r->www_authenticate);
                r->www_authenticate = NULL;
                r->www_authenticate_len = 0;
                r->header_too_long = false;
                r->curl_error[0] = '\0';
                sink->started = false;
                sink->error = 0;
                free(sink->err_buf);
                sink->err_buf = NULL;
                sink->err_len = 0;

                CURLcode cc = CURLE_OK;
#define SET(opt, val) (cc == CURLE_OK ? (cc = curl_easy_setopt(c, opt, val)) : cc)
                SET(CURLOPT_URL, current);
                SET(CURLOPT_PROTOCOLS_STR, "http,https");
                SET(CURLOPT_FOLLOWLOCATION, 0L);
                SET(CURLOPT_NOSIGNAL, 1L);
                SET(CURLOPT_USERAGENT, "sandbox-image/" PROJECT_VERSION);
                SET(CURLOPT_HTTPHEADER, headers);
                SET(CURLOPT_SSL_VERIFYPEER, 1L);
                SET(CURLOPT_SSL_VERIFYHOST, 2L);
                SET(CURLOPT_CONNECTTIMEOUT, REGISTRY_CONNECT_TIMEOUT);
                SET(CURLOPT_LOW_SPEED_LIMIT, REGISTRY_LOW_SPEED_LIMIT);
                SET(CURLOPT_LOW_SPEED_TIME, REGISTRY_LOW_SPEED_TIME);
                SET(CURLOPT_HEADERFUNCTION, on_header);
                SET(CURLOPT_HEADERDATA, r);
                SET(CURLOPT_WRITEFUNCTION, on_body);
                SET(CURLOPT_WRITEDATA, sink);
                SET(CURLOPT_ERRORBUFFER, r->curl_error);
                if (r->ca_file)
                        SET(CURLOPT_CAINFO, r->ca_file);
                /* No proxy from the environment can reach our loopback. */
                if (host_is_loopback(host))
                        SET(CURLOPT_PROXY, "");
#undef SET
                if (cc != CURLE_OK) {
                        curl_slist_free_all(headers);
                        return report_fail(rep, -EIO, "libcurl: %s", curl_easy_strerror(cc));
                }
                cc = curl_easy_perform(c);
                curl_slist_free_all(headers);
                long status = 0;
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
                r->status = status;
                if (sink->error < 0)
                        return sink->error; /* the caller words it */
                if (cc != CURLE_OK) {
                        const char *why = r->curl_error[0] ? r->curl_error : curl_easy_strerror(cc);
                        int e = cc == CURLE_SSL_CONNECT_ERROR ? -EPROTO
                                : cc == CURLE_PEER_FAILED_VERIFICATION ? -EPERM
                                : cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ? -EHOSTUNREACH
                                : cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
                                                                 : -EIO;
                        return report_fail(rep, e, "%s: %s%s", current, why,
                                           cc == CURLE_PEER_FAILED_VERIFICATION
                                                   ? " (a registry with a private CA needs --ca-file)" : "");
                }
                if (r->header_too_long)
                        return report_fail(rep, -EBADMSG, "%s: a response header is too long", current);
                if (status < 300 || status >= 400 || status == 304)
                        return (int) status;

                /* A redirect: to blob storage, typically. Credentials stay with their host. */
                char *location = NULL;
                if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location) != CURLE_OK || !location)
                        return report_fail(rep, -EBADMSG, "%s: redirect (%ld) without a location", current, status);
                if (hop + 1 > REGISTRY_MAX_REDIRECTS)
                        return report_fail(rep, -ELOOP, "%s: more than %d redirects", url, REGISTRY_MAX_REDIRECTS);
                char *next = strdup(location);
                if (!next)
                        return report_fail(rep, -ENOMEM, "out of memory");
                free(current);
                current = next; /* checked at the top of the loop: https, or http to a loopback host */
        }
}

static void sink_done(Sink *s) {
        free(s->buf);
        free(s->err_buf);
        *s = (Sink) { .fd = -EBADF };
}

/* The registry URL for PATH ("/v2/..."). */
static int registry_url(Registry *r, const char *path, char **ret) {
        return asprintf(ret, "%s://%s%s", r->plain_http ? "http" : "https", r->host, path) < 0 ? -ENOMEM : 0;
}

static bool realm_allowed(const char *realm, char **ret_host) {
        bool https = false;
        if (url_origin(realm, ret_host, &https) < 0)
                return false;
        if (https || host_is_loopback(*ret_host))
                return true;
        free(*ret_host);
        *ret_host = NULL;
        return false;
}

/* Answer the challenge of the last 401: a bearer token from the token server, or basic credentials. */
static int authenticate(Registry *r, ImageReport *rep) {
        AuthChallenge ch = {};
        int k;

        if (!r->www_authenticate)
                return report_fail(rep, -EACCES, "%s: access denied (401 without a challenge)", r->name);
        k = auth_challenge_parse(r->www_authenticate, &ch);
        if (k == -EOPNOTSUPP)
                return report_fail(rep, -EACCES, "%s: the registry asks for an authentication scheme we do not "
                                   "speak (only Bearer and Basic)", r->name);
        if (k < 0)
                return report_fail(rep, -EBADMSG, "%s: malformed WWW-Authenticate header", r->name);

        if (ch.scheme == AUTH_SCHEME_BASIC) {
                auth_challenge_done(&ch);
                if (!r->user)
                        return report_fail(rep, -EACCES, "%s: the registry needs credentials and no credentials file "
                                           "has any for %s (see --authfile)", r->name, r->host);
                free(r->authorization);
                r->authorization = NULL;
                k = basic_header(r->user, r->password, &r->authorization);
                return k < 0 ? report_fail(rep, k, "out of memory") : 0;
        }

        /* Bearer: GET REALM?service=SERVICE&scope=SCOPE, with our credentials when we have some. */
        _cleanup_free_ char *realm_host = NULL, *url = NULL, *scope = NULL, *basic = NULL;
        if (!realm_allowed(ch.realm, &realm_host)) {
                auth_challenge_done(&ch);
                return report_fail(rep, -EPERM, "%s: refusing token server '%.200s' (https, or http on the "
                                   "loopback only)", r->name, ch.realm);
        }
        if (!ch.scope && asprintf(&scope, "repository:%s:pull", r->repository) < 0) {
                auth_challenge_done(&ch);
                return report_fail(rep, -ENOMEM, "out of memory");
        }
        char *esc_service = ch.service ? curl_easy_escape(r->curl, ch.service, 0) : NULL;
        char *esc_scope = curl_easy_escape(r->curl, ch.scope ?: scope, 0);
        k = asprintf(&url, "%s%s%s%s%sscope=%s", ch.realm, strchr(ch.realm, '?') ? "&" : "?",
                     esc_service ? "service=" : "", esc_service ?: "", esc_service ? "&" : "", esc_scope ?: "");
        curl_free(esc_service);
        curl_free(esc_scope);
        auth_challenge_done(&ch);
        if (k < 0) {
                url = NULL;
                return report_fail(rep, -ENOMEM, "out of memory");
        }
        if (r->user && (k = basic_header(r->user, r->password, &basic)) < 0)
                return report_fail(rep, k, "out of memory");

        Sink sink = { .registry = r, .fd = -EBADF, .max = AUTH_TOKEN_RESPONSE_MAX };
        int status = http_get(r, url, "application/json", NULL, basic, realm_host, &sink, rep);
        if (basic)
                explicit_bzero(basic, strlen(basic));
        if (status == -EFBIG)
                status = report_fail(rep, status, "token server %s: answer larger than %d bytes", realm_host,
                                     AUTH_TOKEN_RESPONSE_MAX);
        if (status < 0) {
                sink_done(&sink);
                return status;
        }
        if (status != 200) {
                sink_done(&sink);
                if (status == 401 || status == 403)
                        return report_fail(rep, -EACCES, "token server %s refused %s (HTTP %d)%s", realm_host,
                                           r->user ? "our credentials" : "anonymous access", status,
                                           r->user ? "" : ": the registry needs credentials (see --authfile)");
                return report_fail(rep, -EIO, "token server %s: HTTP %d", realm_host, status);
        }
        _cleanup_free_ char *token = NULL;
        k = auth_token_parse(sink.buf, sink.len, &token);
        if (sink.buf)
                explicit_bzero(sink.buf, sink.len);
        sink_done(&sink);
        if (k < 0)
                return report_fail(rep, -EBADMSG, "token server %s: no valid token in its answer", realm_host);
        free(r->authorization);
        r->authorization = NULL;
        k = asprintf(&r->authorization, "Bearer %s", token);
        explicit_bzero(token, strlen(token));
        if (k < 0) {
                r->authorization = NULL;
                return report_fail(rep, -ENOMEM, "out of memory");
        }
        return 0;
}

/* GET PATH on the registry: picks the scheme (plain HTTP for a loopback registry without TLS) and answers
 * one authentication challenge. Returns the HTTP status or -errno. */
static int registry_get(Registry *r, const char *path, const char *accept, const char *range, Sink *sink,
                        ImageReport *rep) {
        bool answered = false;
        for (unsigned attempt = 0; attempt < 3; attempt++) {
                _cleanup_free_ char *url = NULL;
                if (registry_url(r, path, &url) < 0)
                        return report_fail(rep, -ENOMEM, "out of memory");
                ImageReport probe = {};
                int status = http_get(r, url, accept, range, r->authorization, r->host, sink,
                                      r->scheme_known ? rep : &probe);
                if (status == -EPROTO && r->loopback && !r->scheme_known) {
                        /* A loopback registry that does not speak TLS: plain HTTP, which never leaves the host. */
                        log_debug("%s does not speak TLS, using plain HTTP on the loopback", r->host);
                        r->plain_http = true;
                        r->scheme_known = true;
                        continue;
                }
                if (!r->scheme_known && status < 0 && rep && !rep->error[0])
                        memcpy(rep->error, probe.error, sizeof(rep->error));
                if (status < 0)
                        return status;
                r->scheme_known = true;
                if (status == 401 && !answered && r->auth_count < REGISTRY_MAX_AUTH) {
                        answered = true;
                        r->auth_count++;
                        int k = authenticate(r, rep);
                        if (k < 0)
                                return k;
                        continue;
                }
                return status;
        }
        return report_fail(rep, -EIO, "%s: no answer after authentication", r->name);
}

static int status_fail(Registry *r, int status, const Sink *sink, const char *what, ImageReport *rep) {
        char detail[320];
        error_body_message(sink->err_buf, sink->err_len, detail, sizeof(detail));
        if (status == 401 || status == 403)
                return report_fail(rep, -EACCES, "%s: %s: access denied (HTTP %d)%s%s", r->name, what, status, detail,
                                   r->user ? "" : "; if the registry needs credentials, see --authfile");
        if (status == 404)
                return report_fail(rep, -ENOENT, "%s: %s: not found (HTTP 404)%s", r->name, what, detail);
        return report_fail(rep, -EIO, "%s: %s: HTTP %d%s", r->name, what, status, detail);
}

int registry_get_manifest(Registry *r, const char *reference, char **ret, size_t *ret_size, char **ret_type,
                          char ret_digest[static DIGEST_STRING_MAX], ImageReport *rep) {
        _cleanup_free_ char *path = NULL;
        char digest[DIGEST_STRING_MAX];

        if (asprintf(&path, "/v2/%s/manifests/%s", r->repository, reference) < 0)
                return report_fail(rep, -ENOMEM, "out of memory");
        Sink sink = { .registry = r, .fd = -EBADF, .max = OCI_MAX_DOCUMENT_SIZE };
        int status = registry_get(r, path, OCI_MANIFEST_ACCEPT, NULL, &sink, rep);
        if (status == -EFBIG)
                status = report_fail(rep, -E2BIG, "%s: manifest '%s' is larger than %llu bytes", r->name, reference,
                                     (unsigned long long) OCI_MAX_DOCUMENT_SIZE);
        if (status >= 0 && status != 200)
                status = status_fail(r, status, &sink, reference, rep);
        if (status < 0) {
                sink_done(&sink);
                return status;
        }
        int k = sha256_buffer(sink.buf ?: "", sink.len, digest);
        if (k >= 0 && digest_is_valid(reference) && !streq(digest, reference))
                k = report_fail(rep, -EBADMSG, "%s: manifest %s does not match its digest (it hashes to %s)", r->name,
                                reference, digest);
        if (k >= 0 && r->docker_digest[0] && digest_is_valid(r->docker_digest) && !streq(digest, r->docker_digest))
                k = report_fail(rep, -EBADMSG, "%s: manifest '%s' hashes to %s, the registry says %s", r->name,
                                reference, digest, r->docker_digest);
        _cleanup_free_ char *type = k >= 0 ? strdup(r->content_type) : NULL;
        if (k >= 0 && !type)
                k = report_fail(rep, -ENOMEM, "out of memory");
        if (k < 0) {
                sink_done(&sink);
                return k;
        }
        *ret = sink.buf ? TAKE_PTR(sink.buf) : strdup("");
        *ret_size = sink.len;
        *ret_type = TAKE_PTR(type);
        strcpy(ret_digest, digest);
        sink_done(&sink);
        return *ret ? 0 : report_fail(rep, -ENOMEM, "out of memory");
}

int registry_get_blob_small(Registry *r, const OciDescriptor *d, char **ret, size_t *ret_size, ImageReport *rep) {
        _cleanup_free_ char *path = NULL;
        char digest[DIGEST_STRING_MAX];

        if (d->size > OCI_MAX_DOCUMENT_SIZE)
                return report_fail(rep, -E2BIG, "%s: blob %s of %llu bytes is larger than %llu", r->name, d->digest,
                                   (unsigned long long) d->size, (unsigned long long) OCI_MAX_DOCUMENT_SIZE);
        if (asprintf(&path, "/v2/%s/blobs/%s", r->repository, d->digest) < 0)
                return report_fail(rep, -ENOMEM, "out of memory");
        Sink sink = { .registry = r, .fd = -EBADF, .max = d->size };
        int status = registry_get(r, path, NULL, NULL, &sink, rep);
        if (status == -EFBIG)
                status = report_fail(rep, -EBADMSG, "%s: blob %s is longer than the %llu bytes its descriptor says",
                                     r->name, d->digest, (unsigned long long) d->size);
        if (status >= 0 && status != 200)
                status = status_fail(r, status, &sink, d->digest, rep);
        int k = status < 0 ? status : sha256_buffer(sink.buf ?: "", sink.len, digest);
        if (k >= 0 && (sink.len != d->size || !streq(digest, d->digest)))
                k = report_fail(rep, -EBADMSG, "%s: blob %s does not match its digest (%zu bytes hashing to %s)",
                                r->name, d->digest, sink.len, digest);
        if (k < 0) {
                sink_done(&sink);
                return k;
        }
        *ret = sink.buf ? TAKE_PTR(sink.buf) : strdup("");
        *ret_size = sink.len;
        sink_done(&sink);
        return *ret ? 0 : report_fail(rep, -ENOMEM, "out of memory");
}

/* Hash the first SIZE bytes of FD into H. */
static int hash_file_prefix(int fd, uint64_t size, Sha256 *h) {
        _cleanup_free_ char *buf = malloc(REGISTRY_FILE_BUF);
        if (!buf)
                return -ENOMEM;
        uint64_t off = 0;
        while (off < size) {
                ssize_t n = pread(fd, buf, (size_t) MIN((uint64_t) REGISTRY_FILE_BUF, size - off), (off_t) off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                int k = sha256_update(h, buf, (size_t) n);
                if (k < 0)
                        return k;
                off += (uint64_t) n;
        }
        return 0;
}

int registry_get_blob_file(Registry *r, const OciDescriptor *d, int dir_fd, const char *name, Progress *progress,
                           int *ret_fd, ImageReport *rep) {
        _cleanup_free_ char *path = NULL;
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        char digest[DIGEST_STRING_MAX];
        struct stat st;
        int k;

        if (asprintf(&path, "/v2/%s/blobs/%s", r->repository, d->digest) < 0 || sha256_new(&h) < 0)
                return report_fail(rep, -ENOMEM, "out of memory");
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || fstat(fd, &st) < 0)
                return report_fail(rep, -errno, "cannot open the download file '%s': %m", name);
        uint64_t have = S_ISREG(st.st_mode) ? (uint64_t) st.st_size : 0;
        if (have > d->size) {
                if (ftruncate(fd, 0) < 0)
                        return report_fail(rep, -errno, "'%s': %m", name);
                have = 0;
        }
        if (have > 0 && (k = hash_file_prefix(fd, have, h)) < 0)
                return report_fail(rep, k, "cannot read the partial download '%s': %m", name);
        if (have > 0)
                rep->bytes_resumed += have;
        if (progress)
                progress->bytes = have;

        Sink sink = { .registry = r, .fd = fd, .offset = have, .limit = d->size, .hash = h, .progress = progress };
        for (unsigned attempt = 0; sink.offset < d->size && attempt < 2; attempt++) {
                char range[64];
                if (sink.offset > 0)
                        snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long) sink.offset);
                sink.error = 0;
                int status = registry_get(r, path, NULL, sink.offset > 0 ? range : NULL, &sink, rep);
                if (status == 416 && sink.offset > 0) {
                        /* Our partial file does not fit the blob the registry has: start over. */
                        if (ftruncate(fd, 0) < 0 || sha256_reset(h) < 0) {
                                sink_done(&sink);
                                return report_fail(rep, -errno, "'%s': %m", name);
                        }
                        sink.offset = 0;
                        continue;
                }
                if (status == -EFBIG)
                        status = report_fail(rep, -EBADMSG, "%s: blob %s is longer than the %llu bytes its "
                                             "descriptor says", r->name, d->digest, (unsigned long long) d->size);
                else if (status == -EBADMSG && !rep->error[0])
                        status = report_fail(rep, status, "%s: blob %s: the registry answered our Range request "
                                             "with another range", r->name, d->digest);
                else if (status >= 0 && status != 200 && status != 206)
                        status = status_fail(r, status, &sink, d->digest, rep);
                if (status < 0) {
                        if (status == -EBADMSG)
                                (void) unlinkat(dir_fd, name, 0); /* nothing of a wrong blob is kept */
                        else if (sink.offset < d->size && rep->error[0]) {
                                size_t l = strlen(rep->error);
                                snprintf(rep->error + l, sizeof(rep->error) - l,
                                         "; %llu of %llu bytes of blob %s are kept: pull again to resume",
                                         (unsigned long long) sink.offset, (unsigned long long) d->size, d->digest);
                        }
                        sink_done(&sink);
                        return status;
                }
                rep->bytes_fetched += sink.received;
                break;
        }
        sink_done(&sink);
        k = sha256_final(h, digest);
        if (k < 0)
                return report_fail(rep, k, "hashing failed");
        if (fstat(fd, &st) < 0)
                return report_fail(rep, -errno, "'%s': %m", name);
        if ((uint64_t) st.st_size != d->size || !streq(digest, d->digest)) {
                (void) unlinkat(dir_fd, name, 0);
                return report_fail(rep, -EBADMSG, "%s: blob %s does not match its digest (%llu bytes hashing to %s); "
                                   "nothing of it was kept", r->name, d->digest, (unsigned long long) st.st_size,
                                   digest);
        }
        if (lseek(fd, 0, SEEK_SET) < 0)
                return report_fail(rep, -errno, "'%s': %m", name);
        *ret_fd = TAKE_FD(fd);
        return 0;
}
