// test_header_cpp.cpp — include/ember.h must compile as C++ and link with
// C linkage.
#include "ember.h"

extern "C" int ember_header_cpp_check(void);

extern "C" int ember_header_cpp_check(void) {
    ember_model_params p = ember_model_default_params();
    ember_model *m = nullptr;
    ember_status st = ember_model_load("/nonexistent", &p, &m);
    return (st == EMBER_E_NOT_FOUND && m == nullptr) ? 0 : 1;
}
