/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * transfer: moving money between two balances with optimistic locking.
 *
 * Each transfer leases a connection, WATCHes both balances, reads them,
 * and runs DECRBY/INCRBY in a MULTI/EXEC transaction. When another
 * transfer changed a balance in between, EXEC fails with
 * Redis.Error.WATCH_FAILED and the transfer retries. Eight transfers run
 * concurrently, so conflicts do happen; the total stays the same.
 *
 *   REDIS_URL=redis://127.0.0.1:6379/0 ./transfer
 */

const int N_TRANSFERS = 8;
const int MAX_ATTEMPTS = 50;

class Bank : Object {
    public Redis.Pool pool { get; construct; }
    public string alice { get; construct; }
    public string bob { get; construct; }
    public int retries = 0;

    public Bank (Redis.Pool pool, string prefix) {
        Object (pool: pool, alice: prefix + ":alice", bob: prefix + ":bob");
    }

    static int64 to_int (Redis.Reply r) {
        size_t len;
        return r.is_nil () ? 0 : int64.parse (r.get_string (out len));
    }

    /* Moves @amount from @from to @to; false when @from has too little. */
    public async bool transfer (int id, string from, string to, int64 amount) throws Error {
        for (int attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
            var lease = yield pool.acquire_async ();
            try {
                yield lease.command_async ({ "WATCH", from, to });
                var balance = to_int (yield lease.command_async ({ "GET", from }));
                if (balance < amount) {
                    print ("transfer %d: %s has %lld, cannot move %lld\n", id, from, balance, amount);
                    return false;
                }
                /* Let the other transfers run between our read and EXEC. */
                yield pause (id);
                var batch = new Redis.Batch ()
                    .add ({ "DECRBY", from, amount.to_string () })
                    .add ({ "INCRBY", to, amount.to_string () });
                var res = yield lease.transaction_async (batch);
                print ("transfer %d: moved %lld from %s to %s (attempt %d): now %lld / %lld\n",
                       id, amount, from, to, attempt, res[0].get_integer (), res[1].get_integer ());
                return true;
            } catch (Redis.Error.WATCH_FAILED e) {
                retries++;
                print ("transfer %d: a balance changed under us, retrying (attempt %d)\n", id, attempt);
            } finally {
                pool.release (lease);
            }
        }
        throw new Redis.Error.WATCH_FAILED ("transfer %d: gave up after %d attempts", id, MAX_ATTEMPTS);
    }

    static async void pause (int id) {
        Timeout.add (5 + (id % 3) * 5, () => {
            pause.callback ();
            return Source.REMOVE;
        });
        yield;
    }
}

async int run (string url) {
    try {
        var pool = new Redis.Pool.sync (url);
        var bank = new Bank (pool, "transfer:%s".printf (get_real_time ().to_string ()));
        yield pool.command_async ({ "MSET", bank.alice, "100", bank.bob, "100" });
        print ("start: %s = 100, %s = 100\n", bank.alice, bank.bob);

        int pending = N_TRANSFERS;
        int moved = 0;
        Error? failure = null;
        for (int i = 0; i < N_TRANSFERS; i++) {
            string from = i % 2 == 0 ? bank.alice : bank.bob;
            string to = i % 2 == 0 ? bank.bob : bank.alice;
            bank.transfer.begin (i + 1, from, to, 10 + i, (obj, res) => {
                try {
                    if (bank.transfer.end (res))
                        moved++;
                } catch (Error e) {
                    failure = e;
                }
                if (--pending == 0)
                    run.callback ();
            });
        }
        yield;
        if (failure != null)
            throw failure;

        var res = yield pool.pipeline_async (new Redis.Batch ()
            .add ({ "GET", bank.alice }).add ({ "GET", bank.bob }).add ({ "DEL", bank.alice, bank.bob }));
        size_t len;
        int64 a = int64.parse (res[0].get_string (out len));
        int64 b = int64.parse (res[1].get_string (out len));
        print ("end: %s = %lld, %s = %lld, total %lld; %d transfers done, %d retries after WATCH conflicts\n",
               bank.alice, a, bank.bob, b, a + b, moved, bank.retries);
        yield pool.close_async ();
        return (a + b == 200 && moved == N_TRANSFERS) ? 0 : 1;
    } catch (Error e) {
        printerr ("error: %s\n", e.message);
        return 1;
    }
}

int main () {
    var url = Environment.get_variable ("REDIS_URL") ?? "redis://127.0.0.1:6379/0";
    print ("connecting to %s\n", url);
    var loop = new MainLoop ();
    int status = 1;
    run.begin (url, (obj, res) => {
        status = run.end (res);
        loop.quit ();
    });
    loop.run ();
    return status;
}
