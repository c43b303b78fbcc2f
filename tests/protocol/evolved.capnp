# A later revision of outpost.capnp as a newer peer might send it: Hello has a field
# this build does not know, and the Envelope a member it does not know. Only the
# parts the tests use; layouts match outpost.capnp.
@0xbafb33010a1ac690;

$import "/capnp/c++.capnp".namespace("outpost::protocol::evolved");

struct Envelope {
  union {
    hello @0 :Hello;
    helloReply @1 :Void;
    pushBatch @2 :Void;
    pushAck @3 :Void;
    pullRequest @4 :Void;
    pullReply @5 :Void;
    command @6 :Void;
    error @7 :Void;
    enrollRequest @8 :Void;
    enrollReply @9 :Void;
    future @10 :Text;
  }
}

struct Hello {
  minVersion @0 :UInt16;
  maxVersion @1 :UInt16;
  deviceId @2 :Data;
  workerId @3 :Text;
  appVersion @4 :Text;
  hlc @5 :UInt64;
  capabilities @6 :List(Text);
  templates @7 :List(Text);
  extra @8 :Text;
}
