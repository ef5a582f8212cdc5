#include "runnel/workers/worker_main.hpp"

int main(int argc, char** argv) { return runnel::workers::WorkerMain(argc, argv); }
