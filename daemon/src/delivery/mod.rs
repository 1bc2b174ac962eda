//! Fan-out from the inbox to listeners and the local agent.
