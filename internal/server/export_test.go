package server

// DescriptorLimit exposes descriptorLimit to tests.
var DescriptorLimit = descriptorLimit
