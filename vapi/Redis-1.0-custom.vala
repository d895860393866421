/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Merged by vapigen into redispool-1.0.vapi (see Redis-1.0.metadata, which
 * skips the GIR's version of these methods). vapigen 0.56 ignores a `ctype`
 * override on an array parameter, so the C type of argv is given here: with
 * it, valac casts the argument to `const char* const*`, the type of the C
 * prototype, instead of passing a `gchar**` (an incompatible pointer type).
 */

namespace Redis {
	public sealed class Batch : GLib.Object {
		public unowned Redis.Batch add ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[] argv);
	}

	public interface Client : GLib.Object {
		public async Redis.Reply command_async ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[] argv, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public Redis.Reply command_sync ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[] argv, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public async bool noreply_command_async ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[] argv, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public bool noreply_command_sync ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[] argv, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
	}

	public sealed class Subscriber : GLib.Object {
		public async bool subscribe_async ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[] names, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public bool subscribe_sync ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[] names, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public async bool psubscribe_async ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[] names, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public bool psubscribe_sync ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[] names, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public async bool ssubscribe_async ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[] names, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public bool ssubscribe_sync ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[] names, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public async bool unsubscribe_async ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[]? names = null, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public bool unsubscribe_sync ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[]? names = null, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public async bool punsubscribe_async ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[]? names = null, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public bool punsubscribe_sync ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[]? names = null, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public async bool sunsubscribe_async ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[]? names = null, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public bool sunsubscribe_sync ([CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[]? names = null, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
	}

	public sealed class ClusterSubscriber : GLib.Object {
		public async bool subscribe_async (Redis.SubscriptionKind kind, [CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[] names, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public bool subscribe_sync (Redis.SubscriptionKind kind, [CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[] names, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public async bool unsubscribe_async (Redis.SubscriptionKind kind, [CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[]? names = null, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
		public bool unsubscribe_sync (Redis.SubscriptionKind kind, [CCode (array_length = false, array_null_terminated = true, type = "const char* const*")] string[]? names = null, GLib.Cancellable? cancellable = null) throws Redis.Error, GLib.IOError;
	}
}
