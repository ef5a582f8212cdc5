/* A shared library without Runnel's entry point: the loader must say so. */
int not_a_runnel_plugin(void) { return 42; }
