#include "runnel/cli/app.hpp"

int main(int argc, char** argv) { return runnel::cli::Main(argc, argv); }
