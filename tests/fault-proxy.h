/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Drives tests/fault-proxy.py, a fault-injecting TCP proxy between the
 * library and a real redis-server (commands listed in that file). */
typedef struct _FaultProxy FaultProxy;

FaultProxy *fault_proxy_new      (guint16       upstream_port,
                                  GError      **error);
guint16     fault_proxy_get_port (FaultProxy   *self);
/* Sends one command line and returns the proxy's answer ("ok", "stats …"). */
char       *fault_proxy_command  (FaultProxy   *self,
                                  const char   *command,
                                  GError      **error);
/* Like fault_proxy_command(), failing the test unless the answer is "ok". */
void        fault_proxy_do       (FaultProxy   *self,
                                  const char   *command);
void        fault_proxy_free     (FaultProxy   *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FaultProxy, fault_proxy_free)

G_END_DECLS
