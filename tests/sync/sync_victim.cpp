// A field app that only syncs, for the kill test: opens the vault given on the
// command line (the test's fast key settings), and syncs in small batches until
// it is killed or the sync completes.
//
//   sync_victim VAULT_DIR KEYSTORE_DIR PIN WORKER

#include <outpost/context.hpp>
#include <outpost/platform/clock.hpp>
#include <outpost/platform/key_store.hpp>
#include <outpost/records.hpp>
#include <outpost/sync_client.hpp>
#include <outpost/vault.hpp>

#include <sodium.h>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: sync_victim VAULT_DIR KEYSTORE_DIR PIN WORKER\n");
    return 2;
  }
  try {
    outpost::Context context;
    outpost::platform::FileKeyStore keyStore(argv[2]);
    outpost::VaultOptions o;
    o.argonOpsLimit = crypto_pwhash_OPSLIMIT_MIN;
    o.argonMemLimitBytes = crypto_pwhash_MEMLIMIT_MIN;
    auto vault = outpost::Vault::open(context, argv[1], keyStore, o);
    if (vault->unlock(argv[3]).status != outpost::UnlockStatus::unlocked) {
      std::fprintf(stderr, "sync_victim: the vault did not unlock\n");
      return 1;
    }
    outpost::platform::SystemClock clock;
    outpost::model::RecordStore store(context, *vault, clock,
                                      outpost::model::RecordStoreOptions{argv[4]});
    outpost::SyncOptions so;
    so.pushBatch = 10; // many small transactions: a kill lands in the middle
    so.pullBatch = 10;
    outpost::SyncClient client(context, *vault, store, clock, so);
    (void)client.sync();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sync_victim: %s\n", e.what());
    return 1;
  }
}
