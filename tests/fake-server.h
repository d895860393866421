/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * A scripted fake Redis server on 127.0.0.1 for replies a real server never
 * sends (garbage, truncation, huge bulks, stalls, abrupt closes).
 *
 * It runs on its own threads with blocking, cancellable GSockets, so it works
 * whether or not the test iterates a main context.
 *
 * Script semantics: replies are one FIFO shared by all connections. Every
 * complete command read (RESP array of bulk strings, or an inline command
 * line) on any connection takes the next scripted action; when the script is
 * empty the "answer all" reply is sent (default "+OK\r\n"). Actions:
 *  - bytes: written as-is (may be partial, invalid or several replies);
 *  - generated: prefix + n_fill copies of fill_byte + suffix, streamed in
 *    64 KiB chunks; the stream stops quietly if the client goes away;
 *  - close: the connection is closed without a reply;
 *  - stall: no reply, and the connection stays silent from then on (later
 *    commands on it are still recorded but take nothing from the script);
 *    the socket stays open until fake_server_free() or
 *    fake_server_drop_connections();
 *  - reply then later: bytes written as-is, then, after a delay and on the
 *    same connection, more bytes that answer no command (a stray reply);
 *    that connection reads nothing until they are written.
 * Commands given a fixed reply (fake_server_set_reply_for_command()) take
 * nothing from the script.
 * The greeting, if any, is written right after accept on every connection.
 *
 * All functions may be called from any thread.
 */

typedef struct _FakeServer FakeServer;

FakeServer  *fake_server_new                   (void);
guint16      fake_server_get_port              (FakeServer *self);

void         fake_server_add_reply             (FakeServer *self,
                                                const char *bytes,
                                                gssize      len);
void         fake_server_add_reply_generated   (FakeServer *self,
                                                const char *prefix,
                                                char        fill_byte,
                                                guint64     n_fill,
                                                const char *suffix);
void         fake_server_add_reply_then_later  (FakeServer *self,
                                                const char *bytes,
                                                gssize      len,
                                                const char *later_bytes,
                                                gssize      later_len,
                                                guint       delay_ms);
void         fake_server_add_close             (FakeServer *self);
void         fake_server_add_stall             (FakeServer *self);
void         fake_server_set_greeting          (FakeServer *self,
                                                const char *bytes,
                                                gssize      len);
void         fake_server_set_answer_all        (FakeServer *self,
                                                const char *bytes,
                                                gssize      len);
void         fake_server_set_reply_for_command (FakeServer *self,
                                                const char *name,
                                                const char *bytes,
                                                gssize      len);

guint        fake_server_get_n_commands        (FakeServer *self);
char       **fake_server_get_commands          (FakeServer *self);
guint        fake_server_get_n_connections     (FakeServer *self);
guint        fake_server_get_n_pending         (FakeServer *self);
guint        fake_server_get_n_later_sent      (FakeServer *self);
void         fake_server_drop_connections      (FakeServer *self);

void         fake_server_free                  (FakeServer *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FakeServer, fake_server_free)

G_END_DECLS
